"""Interrupted and overlapping runs with a real (tiny) model: Ctrl-C leaves a partial report marked
incomplete and keeps every finished batch; two runs sharing one cache leave it consistent; a report folder
that cannot be written stops the run before any model loads."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import SHORT_QA, cached_rows, read_run, run_folders, short_questions

FIRST, SECOND = 4, 10  # items of the two suites


# Two suites of short questions, so that a random-weight model answers each in a fraction of a second.
pytestmark = pytest.mark.project(
    suites={name: {**SHORT_QA, "gates": [{"metric": "f1", "min": 0}]} for name in ("first", "second")},
    records={
        "first.jsonl": short_questions("first-", FIRST),
        "second.jsonl": short_questions("second-", SECOND, city="Huế"),
    },
)


@dataclass
class Run:
    """A real `pytest` process on the project, its output in a log file."""

    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, project: pytest.Pytester, model: Path, *args: str) -> Run:
        command = [sys.executable, "-m", "pytest", f"--model={model}", "--batch-size", "1", "-p", "no:cacheprovider"]
        log = project.path / f"run-{time.monotonic_ns()}.log"
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model: one thread each, no oversubscription
        with log.open("w") as output:
            process = subprocess.Popen(
                [*command, *args], cwd=project.path, stdout=output, stderr=subprocess.STDOUT, env=environment
            )
        return cls(process, log)

    def finish(self, timeout: float = 180) -> str:
        """Its output, once it has ended (killed if it takes longer than `timeout` seconds)."""
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        return self.log.read_text("utf-8")


def test_ctrl_c_midway_leaves_a_partial_report_marked_incomplete_and_loses_no_finished_batch(project, tiny_model_dir):
    cache = project.path / "cache"
    args = ["suites/first.yaml", "suites/second.yaml", "--cache-dir", str(cache)]
    run = Run.start(project, tiny_model_dir, *args)
    deadline = time.monotonic() + 120
    while cached_rows(cache) < FIRST + 3 and run.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    run.process.send_signal(signal.SIGINT)  # what Ctrl-C sends: the second suite is being computed
    output = run.finish()
    kept = cached_rows(cache)
    assert run.process.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert FIRST + 3 <= kept < FIRST + SECOND, f"the run was not caught midway ({kept} cached)"
    assert "KeyboardInterrupt" in output
    [partial] = run_folders(project.path)
    document = partial.summary
    assert document["run"]["complete"] is False and document["run"]["exit_status"] == pytest.ExitCode.INTERRUPTED
    assert document["gates_passed"] is False  # the first suite's gate passed, but the run is not whole
    assert [(r["suite"], r["items"]) for r in document["results"]] == [("first", FIRST)]
    assert "**Incomplete run**" in partial.markdown
    assert 'id="incomplete"' in partial.html

    rerun = project.runpytest(f"--model={tiny_model_dir}", "--batch-size", "1", *args)
    assert rerun.ret == 0
    items = read_run(project.path).items
    assert len(items) == FIRST + SECOND and sum(item["cached"] for item in items) == kept
    assert cached_rows(cache) == FIRST + SECOND


def test_two_runs_sharing_one_cache_at_once_leave_it_consistent(project, tiny_model_dir):
    """The runs take the suites in opposite orders, so both write to the cache at the same time."""
    cache = project.path / "cache"
    shared = ["--cache-dir", str(cache)]
    one = Run.start(project, tiny_model_dir, "suites/first.yaml", "suites/second.yaml", "--report-dir", "one", *shared)
    two = Run.start(project, tiny_model_dir, "suites/second.yaml", "suites/first.yaml", "--report-dir", "two", *shared)
    outputs = [one.finish(), two.finish()]
    assert (one.process.returncode, two.process.returncode) == (0, 0), "\n".join(out[-2000:] for out in outputs)
    [first], [second] = ([run.summary["run"] for run in run_folders(project.path, name)] for name in ("one", "two"))
    assert first["started"] <= second["finished"] and second["started"] <= first["finished"]  # they overlapped

    with sqlite3.connect(cache / "predictions.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        values = [json.loads(value) for (value,) in db.execute("SELECT value FROM predictions")]
    assert len(values) == FIRST + SECOND and all(value["mode"] == "generate" for value in values)

    third = project.runpytest(f"--model={tiny_model_dir}", "suites", *shared)
    assert third.ret == 0
    [run] = run_folders(project.path)
    items = run.items
    assert len(items) == FIRST + SECOND and all(item["cached"] for item in items)
    [model] = run.manifest["models"].values()
    assert model["loads"] == []  # answered by the cache alone
    answers = {(item["suite"], item["id"]): item["output"] for item in items}
    for folder in ("one", "two"):
        [earlier] = run_folders(project.path, folder)
        assert {(item["suite"], item["id"]): item["output"] for item in earlier.items} == answers


def a_file(root: Path) -> Path:
    path = root / "a-file"
    path.write_text("", encoding="utf-8")
    return path


def below_a_file(root: Path) -> Path:
    return a_file(root) / "reports"


def in_a_read_only_folder(root: Path) -> Path:
    folder = root / "locked"
    folder.mkdir(mode=0o500)
    return folder / "reports"


@pytest.mark.parametrize(
    "report_dir",
    [
        a_file,
        below_a_file,
        pytest.param(in_a_read_only_folder, marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")),
    ],
)
def test_a_report_folder_that_cannot_be_written_stops_the_run_before_any_model_loads(
    project, tiny_model_dir, report_dir
):
    target = report_dir(project.path)
    result = project.runpytest("suites", f"--model={tiny_model_dir}", "--report-dir", str(target))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--report-dir {target}: * is not a writable folder*"])
    assert not (project.path / ".vnllmtest-cache").exists()  # nothing was computed
