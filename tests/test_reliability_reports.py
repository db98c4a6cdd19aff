"""Faults around the run's own files: a baseline that is not what it claims, a report the disk refuses, a
prediction cache that is corrupt, misplaced or breaks mid-run, failures outside the suites, and outputs
too long to print. In every case the exit code, summary.json, summary.md and report.html say the same."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support import make_project, replay_rows, run_folders

from vnllmtest.stored_run import BaselineError, load_run

RECORDS = [
    {"id": f"01-{n:04d}", "question": f"Thủ đô thứ {n} của nước ta là?", "choices": ["A. Huế", "B. Hà Nội"],
     "answer": "AB"[n % 2]}
    for n in range(6)
]
SUITE = {
    "task": "multiple_choice",
    "scoring": {"mode": "generate"},
    "generation": {"max_new_tokens": 2},
    "gates": [{"metric": "accuracy", "min": 0}],
}


def mc_project(answers: dict[str, str] | None = None, suites: tuple[str, ...] = ("mc",)) -> dict:
    """The arguments of make_project: `suites` over RECORDS, and model.jsonl answering each (right, unless
    `answers` says otherwise)."""
    replies = {record["id"]: (answers or {}).get(record["id"], record["answer"]) for record in RECORDS}
    return {
        "suites": dict.fromkeys(suites, SUITE),
        "records": {f"{name}.jsonl": RECORDS for name in suites},
        "predictions": {"model": [row for name in suites for row in replay_rows(replies, suite=name)]},
    }


pytestmark = pytest.mark.project(**mc_project())


# --- baselines ------------------------------------------------------------------------------------
GOOD = {"suite": "mc", "model": "m", "id": "01-0001", "status": "passed", "metrics": {"accuracy": 1.0}}


def line(**changes: object) -> str:
    return json.dumps({**GOOD, **changes}, ensure_ascii=False)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (line(id=7), "items.jsonl:1: field 'id': expected a non-empty string, got a number (7)"),
        (line(id=""), "items.jsonl:1: field 'id': expected a non-empty string, got a string ('')"),
        (line(suite=None), "items.jsonl:1: field 'suite': expected a non-empty string, got null"),
        (line(model=["m"]), "items.jsonl:1: field 'model': expected a non-empty string, got a list"),
        ("42", "items.jsonl:1: expected a JSON object, got a number (42)"),
        ('"a string"', "items.jsonl:1: expected a JSON object, got a string ('a string')"),
        (f"{line()}\n[1, 2]", "items.jsonl:2: expected a JSON object, got a list"),
        (line(metrics=[1.0]), "items.jsonl:1: field 'metrics': expected an object, got a list"),
        (line(metrics=None), "items.jsonl:1: field 'metrics': expected an object, got null"),
        (line(metrics={"accuracy": "1"}), "items.jsonl:1: metric 'accuracy' is '1', not a finite number"),
        (line(metrics={"accuracy": True}), "items.jsonl:1: metric 'accuracy' is True, not a finite number"),
        (line(status="ok"), "items.jsonl:1: field 'status': expected one of passed, missed, error, got 'ok'"),
        (line(tags=["a"]), "items.jsonl:1: field 'tags': expected an object of strings"),
        (line(cluster=3), "items.jsonl:1: field 'cluster': expected a string or null, got a number (3)"),
        (f"{line()}\n{line()}", "items.jsonl:2: item '01-0001' of suite 'mc' for model 'm' is already on line 1"),
        ('{"suite": "mc", "model": "m"}', "items.jsonl:1: record lacks id, status, metrics"),
        (line(status="x" * 5000), "got 'xxxxxxxxxx"),  # a long value is cut, never repeated whole
    ],
)
def test_a_malformed_baseline_record_names_the_line_and_field(tmp_path, items, expected):
    (tmp_path / "items.jsonl").write_text(items + "\n", "utf-8")
    with pytest.raises(BaselineError) as caught:
        load_run(tmp_path)
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("[]", "summary.json: expected a JSON object, got a list"),
        ('{"run": "yesterday"}', "summary.json: field 'run': expected an object, got a string ('yesterday')"),
        ('{"metric_definitions": [1]}', "summary.json: field 'metric_definitions': expected an object, got a list"),
        ("{", "summary.json: not a readable JSON file"),
    ],
)
def test_a_malformed_baseline_summary_is_named(tmp_path, summary, expected):
    (tmp_path / "items.jsonl").write_text(line() + "\n", "utf-8")
    (tmp_path / "summary.json").write_text(summary, "utf-8")
    with pytest.raises(BaselineError, match="summary.json") as caught:
        load_run(tmp_path)
    assert expected in str(caught.value)


@pytest.mark.parametrize("bad", [line(id=7), "3", line(metrics=[]), line(status=None)])
def test_a_malformed_baseline_stops_the_run_before_any_model_loads(project, bad):
    project.runpytest("suites", "--model", "replay:model.jsonl", "--report-dir", "base")
    [base] = run_folders(project.path, "base")
    baseline = base.path
    with (baseline / "items.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(bad + "\n")
    result = project.runpytest("suites", "--model", "replay:model.jsonl", "--baseline", str(baseline))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--baseline: */items.jsonl:7: *"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert not (project.path / "reports").exists()


# --- reports the disk refuses ---------------------------------------------------------------------
def run_limited(root: Path, file_size_limit: int, *args: str) -> subprocess.CompletedProcess:
    """pytest in a child process whose files may not grow beyond `file_size_limit` bytes (RLIMIT_FSIZE:
    a full disk that stops root too; Python ignores SIGXFSZ, so writes fail with EFBIG)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    command = [sys.executable, "-m", "pytest", "suites", "--model", "replay:model.jsonl", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, *args], cwd=root, preexec_fn=limit, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_a_report_the_disk_refuses_leaves_a_summary_that_says_so(tmp_path):
    # each output is 60 kB: items.jsonl (6 items) is far beyond the 100 kB limit, summary.json is not
    make_project(tmp_path, **mc_project({record["id"]: f"B {'chữ ' * 15_000}" for record in RECORDS}))
    result = run_limited(tmp_path, 100_000, "--no-cache")
    assert result.returncode == 3, result.stdout[-3000:]
    assert "vnllmtest: could not write the report" in result.stdout
    assert "File too large" in result.stdout
    [run] = run_folders(tmp_path)
    files = sorted(path.name for path in run.path.iterdir())
    assert files == ["summary.json"], "no report that tells part of the story"
    summary = run.summary
    assert summary["run"]["exit_status"] == 3
    assert summary["gates_passed"] is False
    assert "the report could not be written" in summary["gates_verdict"]
    assert "File too large" in summary["run"]["report_error"]


def test_a_report_that_fits_is_whole_and_says_exit_0(tmp_path):
    make_project(tmp_path, **mc_project())
    result = run_limited(tmp_path, 1_000_000, "--no-cache")
    assert result.returncode == 0, result.stdout[-3000:]
    [run] = run_folders(tmp_path)
    files = sorted(path.name for path in run.path.iterdir())
    assert files == ["items.jsonl", "report.html", "summary.json", "summary.md"]
    summary = run.summary
    assert (summary["run"]["exit_status"], summary["gates_passed"]) == (0, True)


# --- failures outside the suite items ---------------------------------------------------------------
def verdicts(root: Path) -> tuple[dict, str, str]:
    """What the project's one run says in summary.json, summary.md and report.html."""
    [run] = run_folders(root)
    return run.summary, run.markdown, run.html


def test_a_failing_test_of_the_users_own_fails_the_verdict_too(project):
    project.makepyfile(test_custom="def test_vietnamese_greeting():\n    assert 'xin chào' == 'chào'\n")
    result = project.runpytest("suites", "test_custom.py", "--model", "replay:model.jsonl")
    assert result.ret == 1
    summary, markdown, html = verdicts(project.path)
    assert summary["gates_passed"] is False and summary["run"]["exit_status"] == 1
    assert "1 other test failed" in summary["gates_verdict"]
    assert summary["run"]["other_failures"] == ["test_custom.py::test_vietnamese_greeting (call)"]
    assert "1 other test failed" in markdown
    assert 'id="gates-failed"' in html and "All gates passed" not in html


def test_a_teardown_failure_of_a_suite_item_fails_the_run(project):
    """Before: a failed teardown (a model that would not unload) was not counted, and the run passed."""
    project.makeconftest(
        """
import pytest

@pytest.fixture(autouse=True)
def unload_check():
    yield
    raise RuntimeError("CUDA error: an illegal memory access was encountered")
"""
    )
    result = project.runpytest("suites", "--model", "replay:model.jsonl")
    assert result.ret == 1
    summary, _, html = verdicts(project.path)
    assert summary["gates_passed"] is False and summary["run"]["exit_status"] == 1
    assert "6 other tests failed" in summary["gates_verdict"]
    assert "All gates passed" not in html


def test_a_collection_error_in_a_python_test_file_fails_the_verdict(project):
    project.makepyfile(test_broken="import no_such_module_here\n")
    stopped = project.runpytest("suites", "test_broken.py", "--model", "replay:model.jsonl")
    assert stopped.ret == 2 and not (project.path / "reports").exists(), "pytest stops before any item runs"
    result = project.runpytest(
        "suites", "test_broken.py", "--model", "replay:model.jsonl", "--continue-on-collection-errors"
    )
    assert result.ret == 1
    summary, _, _ = verdicts(project.path)
    assert summary["gates_passed"] is False and summary["run"]["exit_status"] == 1
    assert "1 other test failed" in summary["gates_verdict"]


@pytest.mark.project(**mc_project({"01-0000": "B", "01-0003": "A"}))
def test_with_strict_items_the_verdict_names_the_misses_that_failed_the_run(project):
    result = project.runpytest("suites", "--model", "replay:model.jsonl", "--strict-items")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["vnllmtest gates: Gates not passed: 2 items missed, which --strict-items forbids."])
    summary, markdown, html = verdicts(project.path)
    assert summary["gates_passed"] is False
    assert "2 items missed, which --strict-items forbids" in markdown
    assert "2 items missed, which --strict-items forbids" in html
    without = project.runpytest("suites", "--model", "replay:model.jsonl")
    assert without.ret == 0, "misses alone do not fail a run without --strict-items"


# --- the prediction cache ----------------------------------------------------------------------------
def test_a_corrupt_cache_file_is_named_with_the_fix_before_any_model_loads(project):
    cache = project.path / ".vnllmtest-cache"
    cache.mkdir()
    (cache / "predictions.sqlite").write_bytes(b"\x00Rac rui khong phai SQLite" * 400)
    result = project.runpytest("suites", "--model", "replay:model.jsonl")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*prediction cache */.vnllmtest-cache/predictions.sqlite: DatabaseError: file is not a database; re-run with --no-cache, or point --cache-dir at a writable folder*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (project.path / "reports").exists()
    assert project.runpytest("suites", "--model", "replay:model.jsonl", "--no-cache").ret == 0
    assert project.runpytest("suites", "--model", "replay:model.jsonl", "--cache-dir", "elsewhere").ret == 0


def test_under_xdist_a_corrupt_cache_errors_every_item_naming_the_file(project):
    cache = project.path / ".vnllmtest-cache"
    cache.mkdir()
    (cache / "predictions.sqlite").write_bytes(b"SQLite format 2\x00 but not really" * 300)
    result = project.runpytest("suites", "--model", "replay:model.jsonl", "-n", "2")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*ERROR cache_error: prediction cache */predictions.sqlite: *--no-cache*"])
    [run] = run_folders(project.path)
    summary = run.summary
    assert summary["gates_passed"] is False
    assert [r["statuses"] for r in summary["results"]] == [{"passed": 0, "missed": 0, "error": 6}]


@pytest.mark.project()  # no suites
@pytest.mark.parametrize("cache_is_a_file", [False, True])
def test_a_test_run_without_suites_neither_creates_nor_needs_the_cache(project, cache_is_a_file):
    """Every pytest run where vnllmtest is installed loads the plugin: one without suites must not notice it."""
    project.makepyfile(test_plain="def test_sum():\n    assert 1 + 1 == 2\n")
    if cache_is_a_file:
        (project.path / ".vnllmtest-cache").write_text("một tệp, không phải thư mục", "utf-8")
    result = project.runpytest()
    assert result.ret == 0
    assert (project.path / ".vnllmtest-cache").is_file() is cache_is_a_file
    assert (project.path / ".vnllmtest-cache").exists() is cache_is_a_file
    assert not (project.path / "reports").exists()


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--cache-dir", "a_file/cache", "*prediction cache a_file/cache/predictions.sqlite: *Error: *--no-cache*"),
        ("--cache-dir", "a_file", "*prediction cache a_file/predictions.sqlite: *Error: *--no-cache*"),
        # /proc is read-only, even for root
        ("--cache-dir", "/proc/vnllmtest", "*prediction cache /proc/vnllmtest/predictions.sqlite: *--cache-dir*"),
        # pytest writes JUnit XML after our report: failing then gave INTERNALERROR under a report saying exit 0
        ("--junitxml", "/proc/vnllmtest/junit.xml", "*--junitxml /proc/vnllmtest/junit.xml: * is not a writable folder*"),
        ("--junitxml", "a_file/junit.xml", "*--junitxml a_file/junit.xml: * is not a writable folder*"),
        ("--report-dir", "/proc/vnllmtest-reports", "*--report-dir /proc/vnllmtest-reports: /proc is not a writable folder*"),
    ],
)
def test_a_place_that_cannot_be_written_stops_the_run_before_any_model_loads(project, option, value, expected):
    (project.path / "a_file").write_text("tệp, không phải thư mục", "utf-8")
    result = project.runpytest("suites", "--model", "replay:model.jsonl", option, value)
    assert result.ret == 4
    result.stderr.fnmatch_lines([expected])
    assert not (project.path / "reports").exists()


def corrupt_entries(cache_dir: Path) -> int:
    """Overwrite every cached value with a different kind of damage; the number of entries."""
    damage = ["not json {", json.dumps([1, 2]), json.dumps({"mode": "generate"}),
              json.dumps({"mode": "generate", "text": 5, "choice_logprobs": None, "finish_reason": "stop",
                          "new_tokens": 1}),
              json.dumps({"mode": "sideways", "text": "A", "choice_logprobs": None, "finish_reason": "stop",
                          "new_tokens": 1}),
              json.dumps({"mode": "loglikelihood", "text": "", "choice_logprobs": {"A": "cao"},
                          "finish_reason": "stop", "new_tokens": 0})]
    with sqlite3.connect(cache_dir / "predictions.sqlite") as db:
        keys = [key for (key,) in db.execute("SELECT key FROM predictions ORDER BY key")]
        for key, value in zip(keys, damage * len(keys)):
            db.execute("UPDATE predictions SET value = ? WHERE key = ?", (value, key))
    return len(keys)


def count_requests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the real transformers backend generates (the model itself runs)."""
    from vnllmtest.backends.hf import HFBackend

    batches: list[int] = []
    generate = HFBackend.generate
    monkeypatch.setattr(HFBackend, "generate", lambda self, requests: batches.append(len(requests)) or generate(self, requests))
    return batches


def test_malformed_cache_entries_are_computed_again_once_and_counted(project, monkeypatch, tiny_model_dir):
    model = str(tiny_model_dir)
    first = project.runpytest("suites", "--model", model, "--report-dir", "first")
    assert first.ret == 0
    assert corrupt_entries(project.path / ".vnllmtest-cache") == 6
    batches = count_requests(monkeypatch)
    again = project.runpytest("suites", "--model", model, "--report-dir", "second")
    assert again.ret == 0
    again.stdout.fnmatch_lines(["vnllmtest: 6 malformed prediction cache entries were computed again"])
    assert sum(batches) == 6, "each damaged entry is computed once, never its whole group per item"
    [second] = run_folders(project.path, "second")
    summary = second.summary
    assert summary["manifest"]["cache_entries_recomputed"] == 6
    [first_run] = run_folders(project.path, "first")
    before = first_run.summary
    assert [r["metrics"] for r in summary["results"]] == [r["metrics"] for r in before["results"]]
    batches.clear()
    third = project.runpytest("suites", "--model", model, "--report-dir", "third")
    assert third.ret == 0 and batches == [], "the recomputed entries replaced the damaged ones"


BREAK_THE_CACHE = """
import sqlite3
from pathlib import Path

def pytest_runtest_setup(item):
    if "second" in item.nodeid and not getattr(item.config, "cache_broken", False):
        item.config.cache_broken = True
        with sqlite3.connect(Path(item.config.rootpath, ".vnllmtest-cache", "predictions.sqlite")) as db:
            db.execute("DROP TABLE predictions")
"""


@pytest.mark.project(**mc_project(suites=("first", "second")))
def test_a_cache_that_breaks_mid_run_is_named_once_and_every_item_is_still_scored(project, monkeypatch, tiny_model_dir):
    project.makeconftest(BREAK_THE_CACHE)
    batches = count_requests(monkeypatch)
    result = project.runpytest("suites", "--model", str(tiny_model_dir))
    assert result.ret == 1
    assert result.stdout.str().count("predictions.sqlite: OperationalError") == 1, "named once, not per item"
    result.stdout.fnmatch_lines([
        "*vnllmtest gates: Gates not passed: the prediction cache failed, so finished work was not kept.",
        "vnllmtest: prediction cache */predictions.sqlite: OperationalError: no such table: predictions; re-run with --no-cache*the run went on without the cache",
    ])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("missed", 0) == 12 and "failed" not in outcomes
    assert sum(batches) == 12, "no group is computed again item by item"
    [run] = run_folders(project.path)
    summary = run.summary
    assert summary["gates_passed"] is False and summary["run"]["exit_status"] == 1
    assert len(summary["manifest"]["cache_faults"]) == 1


# --- outputs too long to print ----------------------------------------------------------------------
HUGE = "Tôi nghĩ là " + "rất dài " * 60_000 + "đáp án C"  # about 480,000 characters, a miss


@pytest.mark.project(**mc_project({"01-0000": HUGE}))
def test_a_huge_prediction_is_trimmed_in_the_terminal_and_the_html_and_kept_whole_in_items(project):
    result = project.runpytest("suites", "--model", "replay:model.jsonl")
    assert result.ret == 0
    printed = result.stdout.str()
    assert len(printed) < 40_000
    assert "characters not shown; items.jsonl has the whole text" in printed
    [run] = run_folders(project.path)
    assert max(len(item["output"] or "") for item in run.items) == len(HUGE)
    html = run.html
    assert len(html) < 120_000
    assert "characters not shown; items.jsonl has the whole text" in html
