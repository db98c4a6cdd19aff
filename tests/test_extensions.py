"""Extension points seen from outside: a package with its own dist-info (tests/extension_pkg) registers a
dataset adapter, a backend kind and a model-graded metric through entry points. Every test runs Python in
a subprocess whose path holds that package, so vnllmtest finds it through importlib.metadata alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, make_project, read_run

EXTENSION = REPO / "tests" / "extension_pkg"
TOY_SUITE = """vnllmtest: 1
name: nhac_lai
task: instruction
dataset: {adapter: toy_lines, source: data/nhac_lai.txt}
prompt: {template: "{{ cau_hoi }}"}
generation: {max_new_tokens: 4}
metrics: [exact_match, toy_fluency]
item_pass: {metric: exact_match, min: 1}
gates:
  - {metric: toy_fluency, min: 0}
  - {metric: exact_match, min: 50}
"""
TOY_LINES = "Nhắc lại: Hà Nội | Hà Nội\nNhắc lại: sông Hồng | sông Hồng\nNhắc lại: phở bò | bún chả\n"


def python(*args: str, cwd: Path, paths: tuple[Path, ...] = (EXTENSION,)) -> subprocess.CompletedProcess:
    """Python in a subprocess whose import path holds `paths` (and this folder, for `support`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*paths, REPO / "tests"]))}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def toy_project(root: Path, suite: str = TOY_SUITE) -> Path:
    """A project with `suite` as suites/nhac_lai.yaml, over the three lines of TOY_LINES."""
    return make_project(root, suites={"nhac_lai": suite}, records={"nhac_lai.txt": TOY_LINES.encode()})


LIST_NAMES = (
    "from vnllmtest.extensions import ADAPTERS, BACKENDS, METRICS;"
    "print(ADAPTERS.names(), BACKENDS.names(), METRICS.names())"
)


def test_installed_entry_points_join_each_registry_and_nothing_else_does(tmp_path):
    found = python("-c", LIST_NAMES, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    adapters, backends, metrics = found.stdout.strip().split("] [")
    assert "'toy_lines'" in adapters and "'vmlu'" in adapters
    assert "'vong'" in backends and "'hf'" in backends
    assert "'toy_fluency'" in metrics and "'rouge_l'" in metrics
    without = python("-c", LIST_NAMES, cwd=tmp_path, paths=())
    assert without.returncode == 0 and "toy" not in without.stdout and "vong" not in without.stdout


def test_a_third_party_adapter_backend_and_model_graded_metric_run_a_suite(tmp_path, tiny_model_dir):
    """The echo backend and the tiny model answer; the metric's own model (the tiny model again, under
    another label) loads once, after the candidate models, and scores every answer of both."""
    project = toy_project(tmp_path)
    run = python(
        "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--no-cache", "--report-dir", "reports",
        "--model", "vong:nhac-lai", "--model", str(tiny_model_dir), "--scorer-model", f"toy_fluency={tiny_model_dir}",
        cwd=project,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # the tiny model fails exact_match >= 50
    run = read_run(project)
    summary, items = run.summary, run.items
    results = {result["model"]: result for result in summary["results"]}
    echo, tiny = results["nhac-lai"], results[tiny_model_dir.name.lower()]
    assert echo["statuses"] == {"passed": 2, "missed": 1, "error": 0}  # the adapter read all three lines
    for result in (echo, tiny):
        assert result["metrics"]["toy_fluency"]["n"] == 3 and result["unscored"]["toy_fluency"] == 0
        assert 0 <= result["metrics"]["toy_fluency"]["value"] <= 100
    assert [gate["state"] for gate in echo["gates"]] == ["passed", "passed"]
    assert [gate["state"] for gate in tiny["gates"]] == ["passed", "failed"]
    assert summary["metric_definitions"]["toy_fluency"] == 1
    assert all(0 <= item["metrics"]["toy_fluency"] <= 1 for item in items)
    manifest = summary["manifest"]
    [candidate_load] = manifest["models"][tiny["model"]]["loads"]
    [(scorer, entry)] = manifest["judges"].items()
    assert scorer == f"toy_fluency:{tiny['model']}" and entry["spec"] == str(tiny_model_dir)
    assert [load["number"] for load in entry["loads"]] == [candidate_load["number"] + 1]  # after the candidate


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("adapter: toy_lines", "adapter: toy_line"), "unknown dataset adapter 'toy_line'; known: squad_v2, toy_lines"),
        (("[exact_match, toy_fluency]", "[exact_match, toy_fluenc]"), "unknown metric 'toy_fluenc'"),
        (("metric: exact_match, min: 1", "metric: toy_fluency, min: 1"), "'toy_fluency' is scored by a model"),
    ],
)
def test_suite_validation_reads_names_from_the_registries(tmp_path, change, message):
    project = toy_project(tmp_path, TOY_SUITE.replace(*change))
    run = python("-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--model", "vong:x", cwd=project)
    assert run.returncode == 2 and message in run.stdout, run.stdout[-3000:]  # a collection error


def test_an_unknown_backend_prefix_is_a_model_error_listing_the_installed_kinds(tmp_path):
    project = toy_project(tmp_path)
    run = python("-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--model", "vongg", cwd=project)
    assert run.returncode == 4
    assert "not a backend kind (hf:…, openai:…, replay:…, vong:…)" in run.stderr


BROKEN_EXT = """
from vnllmtest.extensions import BackendKind, Metric

ADAPTER = "not an adapter"
KIND = BackendKind(load=lambda spec, hf, server: None)
CHOICE = Metric("binary", "points", 1, "made by choice scoring", choice_modes=("generate",))


def length_share(answer, references, abstentions):
    if "Hồng" in answer:
        raise ZeroDivisionError("chia cho 0")
    return 2.0 if "Hà Nội" in answer else 0.5


class Grader:
    default_model = "vong:cham-diem"

    def score(self, model, jobs, runner, max_new_tokens):
        return [1.5 if "Hà Nội" in job.output else None for job in jobs]


TEXT = Metric("continuous", "points", 1, "raises or leaves [0, 1] on some answers", compute=length_share)
GRADED = Metric("continuous", "points", 1, "a grader out of range on one answer", grader=Grader())
"""


def broken_distribution(root: Path, entry: str) -> Path:
    """A folder holding an installed distribution `broken-ext` with these entry points and BROKEN_EXT."""
    info = root / "site" / "broken_ext-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-ext\nVersion: 1.0\n", "utf-8")
    (info / "entry_points.txt").write_text(entry, "utf-8")
    (root / "site" / "broken_ext.py").write_text(BROKEN_EXT, "utf-8")
    return root / "site"


def run_with(tmp_path: Path, entry: str, suite: str, *options: str) -> subprocess.CompletedProcess:
    """pytest over a toy project with `suite`, with the toy package and `broken-ext` installed."""
    site = broken_distribution(tmp_path, entry)
    project = toy_project(tmp_path / "project", suite)
    arguments = ("-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--no-cache", "--report-dir", "reports")
    return python(*arguments, "--model", "vong:x", *options, cwd=project, paths=(site, EXTENSION))


@pytest.mark.parametrize(
    ("entry", "suite", "message"),
    [
        (
            "[vnllmtest.adapters]\ntoy_csv = broken_ext:MISSING\n",
            TOY_SUITE.replace("toy_lines", "toy_csv"),
            "dataset adapter 'toy_csv' (broken_ext:MISSING) could not be loaded: module 'broken_ext' has no attribute",
        ),
        (
            "[vnllmtest.adapters]\ntoy_csv = broken_ext:ADAPTER\n",
            TOY_SUITE.replace("toy_lines", "toy_csv"),
            "dataset adapter 'toy_csv' (broken_ext:ADAPTER) is a str, not a vnllmtest DatasetAdapter",
        ),
        (
            "[vnllmtest.adapters]\nvmlu = broken_ext:ADAPTER\n",
            TOY_SUITE,
            "entry point 'vmlu = broken_ext:ADAPTER' (group vnllmtest.adapters) would replace vnllmtest's own "
            "dataset adapter 'vmlu'",
        ),
        (
            "[vnllmtest.backends]\nvong = broken_ext:KIND\n",
            TOY_SUITE,
            "(group vnllmtest.backends) repeats the name of 'vong = ",
        ),
        (
            "[vnllmtest.backends]\nllama-cpp = broken_ext:KIND\n",
            TOY_SUITE,
            "entry point 'llama-cpp = broken_ext:KIND' (group vnllmtest.backends) has a name vnllmtest cannot use",
        ),
        (
            "[vnllmtest.metrics]\njudge_vibe = broken_ext:TEXT\n",
            TOY_SUITE,
            "has a name starting with 'judge_', which vnllmtest keeps for its own metrics",
        ),
        (
            "[vnllmtest.metrics]\ntoy_choice = broken_ext:CHOICE\n",
            TOY_SUITE.replace("[exact_match, toy_fluency]", "[exact_match, toy_fluency, toy_choice]"),
            "metric 'toy_choice' (broken_ext:CHOICE): an installed metric needs `compute` (from the answer) or "
            "`grader` (model-graded), not `choice_modes`",
        ),
    ],
)
def test_a_broken_installed_extension_is_an_error_naming_its_entry_point(tmp_path, entry, suite, message):
    run = run_with(tmp_path, entry, suite)
    assert run.returncode in (2, 4) and message in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]


SIMPLE_SUITE = TOY_SUITE.replace("[exact_match, toy_fluency]", "[exact_match]").replace(
    "  - {metric: toy_fluency, min: 0}\n", ""
)


def test_a_broken_installed_metric_leaves_suites_that_do_not_use_it_alone(tmp_path):
    run = run_with(tmp_path, "[vnllmtest.metrics]\ntoy_gone = broken_ext:MISSING\n", SIMPLE_SUITE)
    assert run.returncode == 0, run.stdout[-3000:]
    assert read_run(tmp_path / "project").results[0]["statuses"] == {"passed": 2, "missed": 1, "error": 0}


@pytest.mark.parametrize(
    ("metric", "messages"),
    [
        (
            "toy_text",
            {
                "dong-1": "metric 'toy_text' gave 2.0, not a number in [0, 1]",
                "dong-2": "metric 'toy_text' failed: ZeroDivisionError: chia cho 0",
            },
        ),
        ("toy_graded", {"dong-1": "toy_graded: metric 'toy_graded' gave 1.5, not a number in [0, 1]"}),
    ],
)
def test_an_installed_metric_that_raises_or_leaves_0_to_1_fails_only_those_items(tmp_path, metric, messages):
    """The items it could score keep their values (a grader's None leaves an item unscored, counted); the
    group is computed once, so the failing items are errors naming the metric, never internal errors."""
    entry = "[vnllmtest.metrics]\ntoy_text = broken_ext:TEXT\ntoy_graded = broken_ext:GRADED\n"
    run = run_with(tmp_path, entry, SIMPLE_SUITE.replace("[exact_match]", f"[exact_match, {metric}]"))
    assert run.returncode == 1, run.stdout[-3000:]
    found = read_run(tmp_path / "project")
    failure = "metric_failed" if metric == "toy_text" else "scorer_failed"
    for item_id, message in messages.items():
        item = found.item(item_id)
        assert (item["status"], item["failure_class"]) == ("error", failure) and message in item["message"]
    [result] = found.results
    assert result["statuses"]["error"] == len(messages)
    if metric == "toy_text":
        assert found.item("dong-3")["metrics"]["toy_text"] == 0.5
    else:  # the scorer model (the echo backend again) gave None for the two other answers
        assert result["unscored"]["toy_graded"] == 2 and "toy_graded:cham-diem" in found.manifest["judges"]
