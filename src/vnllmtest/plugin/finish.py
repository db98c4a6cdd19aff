"""The end of a suite run, in the process that gathered every item's report: the baseline comparison,
the summaries and their gates, the manifest, the one verdict, the report folder and the exit code.
Imported only when a run evaluated suites, so that other pytest runs never load the statistics stack."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest

from vnllmtest.aggregate import summarize
from vnllmtest.comparison import Comparison, compare
from vnllmtest.gates import GatesVerdict, check_gates, run_verdict
from vnllmtest.manifest import build_manifest
from vnllmtest.outcomes import GroupSummary, ItemResult, RunFacts, RunScope
from vnllmtest.plugin.junit import gates_to_junit
from vnllmtest.plugin.settings import Settings
from vnllmtest.report import RunReport, new_run_folder, write_failure_summary, write_run
from vnllmtest.stored_run import StoredRun
from vnllmtest.submission import SubmissionFile, not_written, plan_submissions, submission_texts
from vnllmtest.suite import SUBMISSION_CONTEXT, SuiteSpec


class Gathered(Protocol):
    """What vnllmtest.plugin.results.ResultCollector gathered during the run, and where the end's
    results go for the terminal summary."""

    settings: Settings
    config: pytest.Config
    records: list[dict[str, Any]]
    nodeids: dict[tuple[str, str, str], str]
    hard_failures: int
    other_failures: list[str]
    collection_errors: list[dict[str, str]]
    started: datetime
    baseline: StoredRun | None
    comparison: Comparison | None
    summaries: list[GroupSummary]
    verdict: GatesVerdict | None
    cache_faults: list[str]
    cache_recomputed: int
    run_folder: Path | None
    report_error: str | None
    submissions: list[SubmissionFile]

    def phase_seconds(self) -> dict[str, dict[str, float]]: ...


def finish_run(gathered: Gathered, session: pytest.Session, exitstatus: int) -> None:
    """Compare, summarise, check the gates (after the comparison), write the report and set the exit code."""
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldfail or session.shouldstop)
    settings, records = gathered.settings, gathered.records
    items = [ItemResult.from_record(record["item"]) for record in records]
    specs = _specs(records, settings.submission)
    iterations = settings.bootstrap_iterations
    if gathered.baseline is not None:
        gathered.comparison = compare(
            items,
            gathered.baseline,
            {name: spec.reported_metrics for name, spec in specs.items()},
            baseline_model=settings.baseline_model,
            nodeids=gathered.nodeids,
            iterations=iterations,
        )
    scope = RunScope(_planned(records), settings.data.limit, interrupted)
    summaries = summarize(items, specs, iterations=iterations, scope=scope)
    gathered.summaries = check_gates(summaries, specs, gathered.comparison, scope)
    gates_to_junit(gathered.config, gathered.summaries, _suite_paths(records), settings.require_gates)
    manifest = build_manifest(
        (record["context"] for record in records), settings.manifest_options(), [spec.label for spec in settings.specs]
    )
    manifest["phase_seconds"] = gathered.phase_seconds()  # the report phase up to here: the files are not written yet
    gathered.submissions = plan_submissions(items, specs, [spec.label for spec in settings.specs], scope)
    if gathered.submissions:
        manifest["submissions"] = [planned.to_json() for planned in gathered.submissions]
    gathered.cache_faults = manifest["cache_faults"]
    gathered.cache_recomputed = manifest["cache_entries_recomputed"]
    facts = RunFacts(
        started=gathered.started.isoformat(timespec="seconds"),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        complete=not interrupted,
        require_gates=settings.require_gates,
        strict_items=settings.strict_items,
        collection_errors=gathered.collection_errors,
        other_failures=gathered.other_failures,
        cache_faults=gathered.cache_faults,
        submission=settings.submission,
    )
    facts.exit_status = status = _exit_status(gathered, session.exitstatus, facts)
    report = RunReport(gathered.summaries, items, manifest, facts, gathered.verdict, gathered.comparison)
    try:
        gathered.run_folder = new_run_folder(Path(settings.report_dir))
        facts.id = gathered.run_folder.name
        extra = submission_texts(items, gathered.submissions)
        write_run(gathered.run_folder, report, _rerun_options(gathered.config, settings.argv), extra)
    except OSError as exc:
        status = pytest.ExitCode.INTERNAL_ERROR
        gathered.report_error = f"could not write the report: {exc}"
        if gathered.submissions:  # they are written with the report, or not at all
            gathered.submissions = not_written(gathered.submissions, "the report could not be written")
            manifest["submissions"] = [planned.to_json() for planned in gathered.submissions]
        facts.exit_status, facts.report_error = int(status), gathered.report_error
        gathered.verdict = run_verdict(gathered.summaries, facts)
        if gathered.run_folder is not None:
            try:  # the one file that says what happened, if the disk takes that much
                write_failure_summary(gathered.run_folder, dataclasses.replace(report, verdict=gathered.verdict))
            except OSError:
                pass
    session.exitstatus = status


def _suite_paths(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {record["context"]["suite"]: record["context"]["suite_path"] for record in records}


def _specs(records: Sequence[dict[str, Any]], submission: bool) -> dict[str, SuiteSpec]:
    """Suite specs by name, as collected (under --submission, as SuiteSpec.as_submission made them): each
    process sends a suite's spec with the first item it reports of it (xdist workers collect, the
    controller does not; the files may have changed since)."""
    specs: dict[str, SuiteSpec] = {}
    for record in records:
        context = record["context"]
        if "suite_spec" in context and context["suite"] not in specs:
            views = SUBMISSION_CONTEXT if submission else None
            specs[context["suite"]] = SuiteSpec.model_validate(context["suite_spec"], context=views)
    return specs


def _planned(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Each suite's size as collected: the items its sampling selects, before --limit."""
    return {record["context"]["suite"]: record["context"]["suite_items"] for record in records}


def _rerun_options(config: pytest.Config, argv: Sequence[str]) -> list[str]:
    """This invocation's arguments without its paths: what follows the node ids in flipped.txt."""
    paths = set(config.args)
    return [arg for arg in argv if arg not in paths]


def _exit_status(gathered: Gathered, status: int, facts: RunFacts) -> int:
    """Misses alone do not fail the run (unless --strict-items); errors and failed gates do, and so
    do gates left undecided under --require-gates. Sets the run's one verdict on its gates."""
    misses_only = status == pytest.ExitCode.TESTS_FAILED and gathered.hard_failures == 0 and facts.complete
    if misses_only and not facts.strict_items:
        status = pytest.ExitCode.OK
    facts.exit_status = int(status)
    gathered.verdict = run_verdict(gathered.summaries, facts)
    if status == pytest.ExitCode.OK and not gathered.verdict.passed:
        status = pytest.ExitCode.TESTS_FAILED
    return status
