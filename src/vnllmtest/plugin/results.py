"""Where test reports arrive (the single process, or the xdist controller): every item's result is
gathered, then aggregated and compared with the baseline, the run report written and the exit code set."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vnllmtest import timing
from vnllmtest.plugin.keys import NO_SUBMISSION, PROPERTY, read_payload
from vnllmtest.plugin.xdist import PHASES_OUTPUT
from vnllmtest.suite_marker import is_suite_file

if TYPE_CHECKING:
    from vnllmtest.comparison import Comparison
    from vnllmtest.gates import GatesVerdict
    from vnllmtest.outcomes import GroupSummary
    from vnllmtest.plugin.session import RunState
    from vnllmtest.stored_run import StoredRun
    from vnllmtest.submission import SubmissionFile


class ResultCollector:
    """Gathers every item's result, then aggregates, writes the run report, prints the gates and sets
    the exit code."""

    def __init__(self, state: RunState):
        self.state = state
        self.settings = state.settings
        self.config = state.config
        self.records: list[dict[str, Any]] = []
        self.misses: list[tuple[str, str]] = []  # (node id, detail) of missed items
        self.hard_failures = 0  # failures that are not item misses: errors, crashes, collection
        self.other_failures: list[str] = []  # node ids of failures that are neither an item nor a suite file
        self.cache_faults: list[str] = []  # how the prediction cache failed mid-run, from every process
        self.cache_recomputed = 0  # malformed cache entries that were computed again
        self.collection_errors: list[dict[str, str]] = []  # suites (or files) that could not be collected
        self.started = datetime.now(timezone.utc)
        self.summaries: list[GroupSummary] = []
        self.run_folder: Path | None = None
        self.report_error: str | None = None
        self.submissions: list[SubmissionFile] = []  # the leaderboard files a --submission run wrote
        self.without_submission: list[str] = []  # under --submission: the suites skipped for having no block
        self.baseline: StoredRun | None = None
        self.comparison: Comparison | None = None
        self.nodeids: dict[tuple[str, str, str], str] = {}  # (suite, model, item id) -> node id
        self.verdict: GatesVerdict | None = None
        self.timing_start = timing.snapshot()
        self.worker_phases: dict[str, dict[str, float]] = {}  # seconds per phase of each xdist worker

    def phase_seconds(self) -> dict[str, dict[str, float]]:
        """Seconds per phase of each process so far: the xdist workers and the controller, or the one process."""
        workers = {name: self.worker_phases[name] for name in sorted(self.worker_phases, key=_worker_number)}
        return {**workers, "controller" if workers else "main": timing.since(self.timing_start)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """An xdist worker finished: keep the seconds per phase it sent (none when it crashed)."""
        self.worker_phases[node.gateway.id] = getattr(node, "workeroutput", {}).get(PHASES_OUTPUT) or {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before any model loads: the report and JUnit folders must be writable and the baseline readable."""
        report_dir = self.settings.report_dir
        _check_writable(Path(report_dir), f"--report-dir {report_dir}")
        junit = self.config.getoption("xmlpath", None)
        if junit:  # pytest writes it after our report: a failure then would contradict the report's exit code
            _check_writable(Path(junit).parent, f"--junitxml {junit}")
        if self.settings.baseline:
            from vnllmtest.comparison import check_pairing
            from vnllmtest.stored_run import BaselineError, load_run

            try:
                self.baseline = load_run(self.settings.baseline)
                check_pairing(self.baseline, [spec.label for spec in self.settings.specs], self.settings.baseline_model)
            except BaselineError as exc:
                raise pytest.UsageError(f"--baseline: {exc}") from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # JUnit XML gets the item's metrics, not the whole payload
            report.user_properties = [entry for entry in report.user_properties if entry[0] != PROPERTY]
            if report.failed:  # e.g. a model that failed to unload: the run must not pass
                self.hard_failures += 1
                self.other_failures.append(f"{report.nodeid} (teardown)")
            return
        payload = read_payload(report)
        if payload is not None and (report.when == "call" or report.failed):
            self.records.append(payload)
            item = payload["item"]
            self.nodeids[(item["suite"], item["model"], item["id"])] = report.nodeid
        if report.failed and payload and payload["item"]["status"] == "missed":
            self.misses.append((report.nodeid, report.longreprtext))
        elif report.failed:
            self.hard_failures += 1
            if payload is None:  # a user's own test file, not a suite item
                self.other_failures.append(f"{report.nodeid} ({report.when})")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and isinstance(report.longrepr, tuple) and NO_SUBMISSION in str(report.longrepr[2]):
            self.without_submission.append(str(report.longrepr[2]).rpartition(": ")[2])
        if report.failed:
            self.hard_failures += 1
            if is_suite_file(Path(str(report.fspath))):
                self.collection_errors.append({"path": report.nodeid, "error": report.longreprtext.strip()})
            else:
                self.other_failures.append(f"{report.nodeid or report.fspath} (collection)")

    @pytest.hookimpl(tryfirst=True)  # before JUnit XML writes its file: the gates go into it
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.without_submission and not (self.records or self.collection_errors):
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # shown by pytest_terminal_summary
        if exitstatus == pytest.ExitCode.USAGE_ERROR or not (self.records or self.collection_errors):
            return
        from vnllmtest.plugin.finish import finish_run  # the statistics and report stack, only for suite runs

        with timing.phase("report"):
            finish_run(self, session, exitstatus)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.without_submission and not (self.records or self.collection_errors):
            terminalreporter.write_line(
                f"ERROR: --submission: no suite collected declares a submission: block "
                f"({', '.join(sorted(self.without_submission))}); run a suite that does, such as suites/vmlu.yaml",
                red=True,
            )
        if not self.summaries and not self.collection_errors:
            return
        from vnllmtest.plugin.terminal import (
            show_comparison,
            show_coverage,
            show_gates,
            show_misses,
            show_phases,
            show_run_notes,
            show_submissions,
        )

        settings = self.settings
        option = self.config.option  # pytest's own: --tb and -r
        show_misses(terminalreporter, self.misses, settings.show_misses, option.tbstyle, option.reportchars)
        if self.comparison is not None:
            show_comparison(terminalreporter, self.comparison, settings.show_flips, self.run_folder)
        show_phases(terminalreporter, self.phase_seconds(), (datetime.now(timezone.utc) - self.started).total_seconds())
        show_coverage(terminalreporter, self.summaries)
        show_gates(terminalreporter, self.summaries, self.collection_errors, settings.require_gates)
        notes = ((r["context"]["suite"], note) for r in self.records for note in r["context"].get("data_notes", []))
        show_run_notes(
            terminalreporter,
            notes,
            self.verdict,
            self.cache_faults,
            self.cache_recomputed,
            self.report_error,
            self.run_folder,
        )
        if settings.submission:
            show_submissions(terminalreporter, self.submissions, self.without_submission, self.run_folder)


def _worker_number(name: str) -> tuple[int, str]:
    """gw2 before gw10."""
    digits = name.removeprefix("gw")
    return (int(digits), name) if digits.isdigit() else (-1, name)


def _check_writable(folder: Path, option: str) -> None:
    """Fail before any model loads when files could not be created in `folder` (or the folder itself):
    a file is created in the nearest folder that exists and removed at once, since permission bits
    do not stop root while read-only mounts still do."""
    existing = folder.resolve()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise pytest.UsageError(f"{option}: {existing} is not a writable folder ({exc})") from None
