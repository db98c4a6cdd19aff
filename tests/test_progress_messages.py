"""Progress and messages on real runs: xdist workers' progress lines, long one-time steps shown past pytest's
capture, a model that cannot load shown once per (suite, model) group, the default judge's hint, hub datasets
failing at once without network, and the time per phase."""

from __future__ import annotations

import re
import socket
import time

import pytest

from support import SHORT_QA, SUMMARY_JUDGE, read_run, run_folders, short_questions, write_suite
from vnllmtest import hub
from vnllmtest.timing import PHASES

ITEMS = 10
SUMMARIES = [
    {"id": "c1", "documents": [{"title": "A", "content": "Bài một."}], "summaries": ["Hà Nội là thủ đô"]},
    {"id": "c2", "documents": [{"title": "B", "content": "Bài hai."}], "summaries": ["Thủ đô Việt Nam"]},
]
pytestmark = pytest.mark.project(
    suites={"qa": SHORT_QA, "qb": SHORT_QA},
    records={"qa.jsonl": short_questions("a", ITEMS), "qb.jsonl": short_questions("b", ITEMS), "summ.jsonl": SUMMARIES},
    predictions={
        "preds": {
            **{f"{prefix}{n:02d}": "Hà Nội" for prefix in "ab" for n in range(ITEMS)},
            "c1": "Hà Nội là thủ đô",
            "c2": "Thủ đô",
        }
    },
)


def test_under_xdist_each_worker_shows_its_groups_progress_and_time_per_phase(project):
    result = project.runpytest_subprocess("suites", "--model", "replay:preds.jsonl", "-n", "2")
    assert result.ret == 0
    for suite in ("qa", "qb"):  # on the controller's terminal (the workers' standard error), as each group runs
        group = rf"vnllmtest \[gw\d\] {suite} × preds"
        result.stderr.re_match_lines([rf"{group}: 0/{ITEMS} items$", rf"{group}: {ITEMS}/{ITEMS} items, done in .* s$"])
    seconds = read_run(project.path).manifest["phase_seconds"]
    assert set(seconds) == {"gw0", "gw1", "controller"}
    assert all(set(found) == set(PHASES) for found in seconds.values())
    assert seconds["controller"]["report"] > 0 and seconds["controller"]["generate"] == 0
    result.stdout.re_match_lines(
        [r"=+ vnllmtest time per phase \(seconds\) =+", r"phase +gw\d +gw\d +controller +all processes$", r"report .*"]
    )


def test_a_worker_that_crashed_shows_no_times_rather_than_zeros(project):
    (project.path / "test_crash.py").write_text("import os\n\ndef test_crash():\n    os._exit(3)\n")
    result = project.runpytest_subprocess(
        "suites/qa.yaml", "test_crash.py", "--model", "replay:preds.jsonl", "-n", "2", "--max-worker-restart", "0"
    )
    assert result.ret == 1
    result.stdout.re_match_lines([r"^load +.*n/a", r"^n/a: gw\d sent no times \(the worker crashed or was stopped\)$"])


def test_the_time_per_phase_of_a_real_models_run(project, tiny_model_dir):
    result = project.runpytest("suites/qa.yaml", f"--model={tiny_model_dir}", "--no-cache")
    assert result.ret == 0
    seconds = read_run(project.path).manifest["phase_seconds"]["main"]
    assert seconds["load"] > 0 and seconds["generate"] > 0 and seconds["report"] > 0
    assert seconds["judge"] == 0 and sum(seconds.values()) > seconds["generate"]
    rows = [rf"{name} +\d+\.\d$" for name in (*PHASES, "total")]
    result.stdout.re_match_lines([r"=+ vnllmtest time per phase \(seconds\) =+", r"phase +main$", *rows])


def test_a_model_that_cannot_load_shows_its_error_once_per_group(project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # offline (tests/conftest.py), with an empty cache
    result = project.runpytest("suites/qa.yaml", "suites/qb.yaml", "--model", "nobody/none")
    assert result.parseoutcomes()["errors"] == 2 * ITEMS
    lines = result.stdout.lines
    fetched = "hub id 'nobody/none' could not be fetched"
    # pytest's short summary ("ERROR nodeid - message") is cut to the terminal's width, except under CI=true
    whole = [line for line in lines if fetched in line and "hf download" in line and not line.startswith("ERROR ")]
    assert len(whole) == 2, "the whole error once per (suite, model) group"
    assert all("`hf download nobody/none`" in line and "HF_HUB_OFFLINE=1" in line for line in whole)
    pointers = [line for line in lines if line.startswith("model 'none' could not be set up: the same error as")]
    assert len(pointers) == 2 * (ITEMS - 1)
    # Each item: its "ERROR at setup" header, one line, one short summary line; the rest is the run's frame.
    assert len(lines) < 3 * 2 * ITEMS + 45


def test_a_default_judge_that_cannot_load_says_how_to_choose_another(project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    write_suite(project.path, "summ", {"task": "summarization", "judge": SUMMARY_JUDGE})
    project.runpytest("suites/summ.yaml", "--model", "replay:preds.jsonl")
    messages = [item["message"] or "" for item in read_run(project.path).items]
    assert messages and all("It is the default judge: choose another with --judge SPEC" in message for message in messages)
    project.runpytest("suites/summ.yaml", "--model", "replay:preds.jsonl", "--judge", "nobody/judge")
    chosen = [item["message"] or "" for item in run_folders(project.path)[-1].items]
    assert chosen and all("nobody/judge" in message and "--judge SPEC" not in message for message in chosen)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_hub_dataset_with_the_hub_unreachable_fails_at_once_naming_the_suite_and_the_fix(project, monkeypatch):
    port = _closed_port()
    for name in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert hub.unreachable() is not None
    write_suite(project.path, "qa", {**SHORT_QA, "dataset": {"source": "hf://nobody/nodata"}})
    started = time.monotonic()
    result = project.runpytest_subprocess("suites/qa.yaml", "--model", "replay:preds.jsonl")
    elapsed = time.monotonic() - started
    assert result.ret == 2
    text = result.stdout.str()
    assert re.search(
        rf"suites/qa.yaml: suite 'qa': hf://nobody/nodata \(split train\) could not be loaded: the hub at "
        rf"http://127.0.0.1:{port} cannot be reached \(127.0.0.1:{port}: .*\)\. If the dataset is cached, run with "
        r"HF_HUB_OFFLINE=1 to use that copy; otherwise download it where the hub can be reached: "
        r"`hf download nobody/nodata --repo-type dataset`",
        text,
    )
    assert "Retrying" not in text + result.stderr.str()
    assert elapsed < 15, "the datasets library's retries take about 25 s; one refused connection takes none"


def test_a_hub_dataset_in_offline_mode_without_a_cached_copy_names_the_suite_and_the_fix(
    project, monkeypatch, tmp_path
):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # HF_HUB_OFFLINE=1 (tests/conftest.py), an empty cache
    monkeypatch.delenv("HF_DATASETS_OFFLINE")  # which would decide for datasets when set
    write_suite(project.path, "qa", {**SHORT_QA, "dataset": {"source": "hf://nobody/nodata"}})
    result = project.runpytest("suites/qa.yaml", "--model", "replay:preds.jsonl")
    assert result.ret == 2
    result.stdout.re_match_lines(
        [
            r".*suites/qa.yaml: suite 'qa': hf://nobody/nodata \(split train\) could not be loaded from the local "
            r"cache \(HF_HUB_OFFLINE=1 allows only that\).*download it where the hub can be reached: "
            r"`hf download nobody/nodata --repo-type dataset`.*"
        ]
    )


CONFTEST_WITH_A_BUNDLED_MODEL = """
from pathlib import Path

from vnllmtest.backends import bundled

GGUF = Path(__file__).parent / "damaged.gguf"
GGUF.write_bytes(b"GGUF" + bytes(60))  # the magic number and then nothing a GGUF reader can use
bundled.BUNDLED["damaged"] = lambda root: (lambda: GGUF, "damaged-0123456789abcdef")
"""


def test_a_bundled_models_conversion_is_shown_on_the_terminal_under_default_capture(project, monkeypatch, tmp_path):
    """The real conversion entry (bundled.materialize) run by the model fixture, on a GGUF file it cannot read:
    its notice reaches the terminal while pytest captures the item's output, and the conversion's failure is
    the model's error."""
    monkeypatch.setenv("VNLLMTEST_HOME", str(tmp_path / "home"))
    project.makeconftest(CONFTEST_WITH_A_BUNDLED_MODEL)
    project.makepyprojecttoml('[tool.vnllmtest.aliases]\ndamaged = {bundled = "damaged"}\n')
    result = project.runpytest_subprocess("suites/qa.yaml", "--model", "damaged")
    result.stderr.re_match_lines(
        [
            r"vnllmtest: converting bundled model 'damaged' from damaged.gguf once \(minutes on a small CPU\); "
            r"later runs load .*/home/models/damaged-damaged-0123456",
            r"vnllmtest: \.\.\. failed after \d+ s",
        ]
    )
    result.stdout.fnmatch_lines(["*bundled model 'damaged': converting *damaged.gguf failed:*"])
    assert result.parseoutcomes()["errors"] == ITEMS
