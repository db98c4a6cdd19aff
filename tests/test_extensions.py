"""Extension points seen from outside: a package with its own dist-info (tests/extension_pkg) registers a
dataset adapter, a backend kind and a model-graded metric through entry points. Every test runs Python in
a subprocess whose path holds that package, so vnllmtest finds it through importlib.metadata alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import INNER_RUN_INI, REPO

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
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "nhac_lai.txt").write_text(TOY_LINES, "utf-8")
    (root / "suite.yaml").write_text(suite, "utf-8")
    (root / "pytest.ini").write_text(INNER_RUN_INI, "utf-8")
    return root


def newest_run(reports: Path) -> tuple[dict, list[dict]]:
    folder = max(path for path in reports.iterdir() if path.is_dir())
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text("utf-8").splitlines()]
    return json.loads((folder / "summary.json").read_text("utf-8")), items


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
        "-m", "pytest", "suite.yaml", "-q", "-p", "no:cacheprovider", "--no-cache", "--report-dir", "reports",
        "--model", "vong:nhac-lai", "--model", str(tiny_model_dir), "--scorer-model", f"toy_fluency={tiny_model_dir}",
        cwd=project,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # the tiny model fails exact_match >= 50
    summary, items = newest_run(project / "reports")
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
    run = python("-m", "pytest", "suite.yaml", "-q", "-p", "no:cacheprovider", "--model", "vong:x", cwd=project)
    assert run.returncode == 2 and message in run.stdout, run.stdout[-3000:]  # a collection error


def test_an_unknown_backend_prefix_is_a_model_error_listing_the_installed_kinds(tmp_path):
    project = toy_project(tmp_path)
    run = python("-m", "pytest", "suite.yaml", "-q", "-p", "no:cacheprovider", "--model", "vongg", cwd=project)
    assert run.returncode == 4
    assert "not a backend kind (hf:…, openai:…, replay:…, vong:…)" in run.stderr


def broken_distribution(root: Path, entry: str) -> Path:
    info = root / "site" / "broken_ext-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-ext\nVersion: 1.0\n", "utf-8")
    (info / "entry_points.txt").write_text(entry, "utf-8")
    (root / "site" / "broken_ext.py").write_text("ADAPTER = 'not an adapter'\n", "utf-8")
    return root / "site"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "[vnllmtest.adapters]\ntoy_csv = broken_ext:MISSING\n",
            "dataset adapter 'toy_csv' (broken_ext:MISSING) could not be loaded: module 'broken_ext' has no attribute",
        ),
        (
            "[vnllmtest.adapters]\ntoy_csv = broken_ext:ADAPTER\n",
            "dataset adapter 'toy_csv' (broken_ext:ADAPTER) is a str, not a vnllmtest DatasetAdapter",
        ),
        (
            "[vnllmtest.adapters]\nvmlu = broken_ext:ADAPTER\n",
            "entry point 'vmlu = broken_ext:ADAPTER' (group vnllmtest.adapters) would replace vnllmtest's own "
            "dataset adapter 'vmlu'",
        ),
    ],
)
def test_a_broken_installed_extension_is_a_collection_error_naming_its_entry_point(tmp_path, entry, message):
    site = broken_distribution(tmp_path, entry)
    adapter = "toy_csv" if "toy_csv" in entry else "vmlu"
    project = toy_project(tmp_path / "project", TOY_SUITE.replace("toy_lines", adapter))
    arguments = ("-m", "pytest", "suite.yaml", "-q", "-p", "no:cacheprovider", "--model", "vong:x")
    run = python(*arguments, cwd=project, paths=(site, EXTENSION))
    assert run.returncode != 0 and message in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
