"""Where test reports arrive (the single process, or the xdist controller): every item's result is
gathered, then aggregated and compared with the baseline, the run report written and the exit code set."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from vnllmtest.aggregate import summarize
from vnllmtest.comparison import Comparison, check_pairing, compare
from vnllmtest.gates import GatesVerdict, check_gates, run_verdict
from vnllmtest.manifest import build_manifest
from vnllmtest.plugin.junit import gates_to_junit
from vnllmtest.plugin.keys import PROPERTY, read_payload
from vnllmtest.plugin.session import RunState
from vnllmtest.plugin.terminal import show_comparison, show_coverage, show_gates, show_misses, show_run_notes
from vnllmtest.outcomes import GroupSummary, ItemResult, RunFacts, RunScope
from vnllmtest.report import RunReport, new_run_folder, write_failure_summary, write_run
from vnllmtest.stored_run import BaselineError, StoredRun, load_run
from vnllmtest.suite import SuiteSpec, is_suite_file


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
        self.baseline: StoredRun | None = None
        self.comparison: Comparison | None = None
        self.nodeids: dict[tuple[str, str, str], str] = {}  # (suite, model, item id) -> node id
        self.verdict: GatesVerdict | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before any model loads: the report and JUnit folders must be writable and the baseline readable."""
        report_dir = self.settings.report_dir
        _check_writable(Path(report_dir), f"--report-dir {report_dir}")
        junit = self.config.getoption("xmlpath", None)
        if junit:  # pytest writes it after our report: a failure then would contradict the report's exit code
            _check_writable(Path(junit).parent, f"--junitxml {junit}")
        if self.settings.baseline:
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
        if report.failed:
            self.hard_failures += 1
            if is_suite_file(Path(str(report.fspath))):
                self.collection_errors.append({"path": report.nodeid, "error": report.longreprtext.strip()})
            else:
                self.other_failures.append(f"{report.nodeid or report.fspath} (collection)")

    @pytest.hookimpl(tryfirst=True)  # before JUnit XML writes its file: the gates go into it
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.USAGE_ERROR or not (self.records or self.collection_errors):
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldfail or session.shouldstop)
        settings = self.settings
        items = [ItemResult.from_record(record["item"]) for record in self.records]
        specs = self._specs()
        iterations = settings.bootstrap_iterations
        if self.baseline is not None:
            metrics = {name: spec.reported_metrics for name, spec in specs.items()}
            self.comparison = compare(
                items,
                self.baseline,
                metrics,
                baseline_model=settings.baseline_model,
                nodeids=self.nodeids,
                iterations=iterations,
            )
        scope = RunScope(self._planned(), settings.data.limit, interrupted)
        summaries = summarize(items, specs, iterations=iterations, scope=scope)
        self.summaries = check_gates(summaries, specs, self.comparison, scope)  # after the comparison
        gates_to_junit(self.config, self.summaries, self._suite_paths(), settings.require_gates)
        manifest = build_manifest(
            (record["context"] for record in self.records),
            settings.manifest_options(),
            [spec.label for spec in settings.specs],
        )
        self.cache_faults = manifest["cache_faults"]
        self.cache_recomputed = manifest["cache_entries_recomputed"]
        facts = RunFacts(
            started=self.started.isoformat(timespec="seconds"),
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            complete=not interrupted,
            require_gates=settings.require_gates,
            strict_items=settings.strict_items,
            collection_errors=self.collection_errors,
            other_failures=self.other_failures,
            cache_faults=self.cache_faults,
        )
        facts.exit_status = status = self._exit_status(session.exitstatus, facts)
        report = RunReport(self.summaries, items, manifest, facts, self.verdict, self.comparison)
        try:
            self.run_folder = new_run_folder(Path(settings.report_dir))
            facts.id = self.run_folder.name
            write_run(self.run_folder, report, self._rerun_options())
        except OSError as exc:
            status = pytest.ExitCode.INTERNAL_ERROR
            self.report_error = f"could not write the report: {exc}"
            facts.exit_status, facts.report_error = int(status), self.report_error
            self.verdict = run_verdict(self.summaries, facts)
            if self.run_folder is not None:
                try:  # the one file that says what happened, if the disk takes that much
                    write_failure_summary(self.run_folder, dataclasses.replace(report, verdict=self.verdict))
                except OSError:
                    pass
        session.exitstatus = status

    def _suite_paths(self) -> dict[str, str]:
        return {record["context"]["suite"]: record["context"]["suite_path"] for record in self.records}

    def _specs(self) -> dict[str, SuiteSpec]:
        """Suite specs by name, as collected: each process sends a suite's spec with the first item it
        reports of it (xdist workers collect, the controller does not; the files may have changed since)."""
        specs: dict[str, SuiteSpec] = {}
        for record in self.records:
            context = record["context"]
            if "suite_spec" in context and context["suite"] not in specs:
                specs[context["suite"]] = SuiteSpec.model_validate(context["suite_spec"])
        return specs

    def _planned(self) -> dict[str, int]:
        """Each suite's size as collected: the items its sampling selects, before --limit."""
        return {record["context"]["suite"]: record["context"]["suite_items"] for record in self.records}

    def _rerun_options(self) -> list[str]:
        """This invocation's arguments without its paths: what follows the node ids in flipped.txt."""
        paths = set(self.config.args)
        return [arg for arg in self.settings.argv if arg not in paths]

    def _exit_status(self, status: int, facts: RunFacts) -> int:
        """Misses alone do not fail the run (unless --strict-items); errors and failed gates do, and so
        do gates left undecided under --require-gates. Sets the run's one verdict on its gates."""
        misses_only = status == pytest.ExitCode.TESTS_FAILED and self.hard_failures == 0 and facts.complete
        if misses_only and not facts.strict_items:
            status = pytest.ExitCode.OK
        facts.exit_status = int(status)
        self.verdict = run_verdict(self.summaries, facts)
        if status == pytest.ExitCode.OK and not self.verdict.passed:
            status = pytest.ExitCode.TESTS_FAILED
        return status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summaries and not self.collection_errors:
            return
        settings = self.settings
        option = self.config.option  # pytest's own: --tb and -r
        show_misses(terminalreporter, self.misses, settings.show_misses, option.tbstyle, option.reportchars)
        if self.comparison is not None:
            show_comparison(terminalreporter, self.comparison, settings.show_flips, self.run_folder)
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
