"""What a run prints in pytest's terminal summary: missed items, the comparison with the baseline, the time
per phase, verdict coverage, the gates table, then data notes, the verdict, cache faults and where the report is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vnllmtest.comparison import Comparison, Flip
from vnllmtest.gates import GatesVerdict, gate_outcome
from vnllmtest.metric_table import VERDICT_COVERAGE
from vnllmtest.outcomes import GroupSummary
from vnllmtest.report import FLIPPED_FILE
from vnllmtest.submission import SubmissionFile
from vnllmtest.timing import PHASES


def show_misses(
    terminalreporter: Any, misses: Sequence[tuple[str, str]], shown: int, tbstyle: str, reportchars: str
) -> None:
    """Details of the first `shown` misses (none under --tb=no), then `-rm` one-liners for all of them."""
    if misses and shown and tbstyle != "no":
        terminalreporter.section("misses")
        for nodeid, detail in misses[:shown]:
            terminalreporter.write_sep("_", nodeid)
            terminalreporter.write_line(detail)
        if len(misses) > shown:
            terminalreporter.write_line(
                f"... {len(misses) - shown} more misses: see items.jsonl in the report, "
                "or re-run items with -k ID, --lf, or more details with --show-misses N"
            )
    if "m" in reportchars and misses:
        terminalreporter.section("short summary of missed items")
        for nodeid, detail in misses:
            terminalreporter.write_line(f"MISSED {nodeid} - {detail.splitlines()[0]}")


def show_phases(terminalreporter: Any, seconds: Mapping[str, Mapping[str, float]], wall: float) -> None:
    """Seconds per phase: one column per process (the xdist workers and the controller, or the one process) and,
    with several, their sum (more than the wall clock when the workers ran side by side)."""
    processes = list(seconds)
    summed = len(processes) > 1
    rows = [("phase", *processes, *(["all processes"] if summed else []))]
    for name in [*PHASES, "total"]:
        values = [
            sum(found.values()) if name == "total" else found.get(name, 0.0) for found in map(seconds.get, processes)
        ]
        shown = [f"{value:.1f}" if seconds[process] else "n/a" for process, value in zip(processes, values)]
        rows.append((name, *shown, *([f"{sum(values):.1f}"] if summed else [])))
    terminalreporter.section("vnllmtest time per phase (seconds)")
    write_table(terminalreporter, rows)
    rest = "; the rest went to pytest (collection, item reports)" if not summed else ""
    terminalreporter.write_line(f"wall clock {wall:.1f} s{rest}")
    lost = [process for process in processes if not seconds[process]]
    if lost:
        terminalreporter.write_line(f"n/a: {', '.join(lost)} sent no times (the worker crashed or was stopped)")


def show_gates(
    terminalreporter: Any,
    summaries: Sequence[GroupSummary],
    collection_errors: Sequence[dict[str, str]],
    require_gates: bool,
) -> None:
    """One row per gate of each (suite, model) group, and one per suite that could not be collected."""
    terminalreporter.section("vnllmtest gates")
    rows = [("suite", "model", "items", "pass/miss/err", "gate", "value", "result")]
    for summary in summaries:
        counts = "/".join(str(summary.statuses.get(s, 0)) for s in ("passed", "missed", "error"))
        items = str(summary.items)
        if summary.planned is not None and summary.items < summary.planned:
            items += f" of {summary.planned}"
        for gate in summary.gates or [None]:
            if gate is None:
                rows.append((summary.suite, summary.model, items, counts, "(no gates)", "", ""))
                continue
            word, why = gate_outcome(gate.state, gate.reason, require_gates)
            verdict = word.upper() + (f" ({why})" if why else "")
            rows.append((summary.suite, summary.model, items, counts, gate.gate, gate.detail, verdict))
    for failed in collection_errors:
        rows.append((failed["path"], "—", "0", "—", "(suite not collected)", "", "FAIL (see collection error)"))
    write_table(terminalreporter, rows)


def show_run_notes(
    terminalreporter: Any,
    data_notes: Iterable[tuple[str, str]],
    verdict: GatesVerdict | None,
    cache_faults: Sequence[str],
    cache_recomputed: int,
    report_error: str | None,
    run_folder: Path | None,
) -> None:
    """The lines under the gates table: data notes, the verdict, cache faults, where the report went."""
    for suite, note in sorted(set(data_notes)):
        terminalreporter.write_line(f"vnllmtest data note: {suite}: {note}", yellow=True)
    if verdict is not None:
        settled = verdict.passed and verdict.evaluated
        terminalreporter.write_line(
            f"vnllmtest gates: {verdict.headline}",
            green=settled,
            yellow=verdict.passed and not settled,
            red=not verdict.passed,
        )
    for fault in cache_faults:
        terminalreporter.write_line(f"vnllmtest: {fault}", red=True)
    if cache_recomputed:
        terminalreporter.write_line(
            f"vnllmtest: {cache_recomputed} malformed prediction cache entries were computed again", yellow=True
        )
    if report_error:
        terminalreporter.write_line(f"vnllmtest: {report_error}", red=True)
    elif run_folder is not None:
        terminalreporter.write_line(
            f"vnllmtest report: {run_folder}/summary.md (also report.html, summary.json, items.jsonl)"
        )


def show_submissions(
    terminalreporter: Any, files: Sequence[SubmissionFile], without: Sequence[str], run_folder: Path | None
) -> None:
    """A --submission run's files, one line each (red when one is not ready), and the suites it did not run."""
    if without:
        terminalreporter.write_line(
            f"vnllmtest --submission: not run, no submission: block: {', '.join(sorted(without))}", yellow=True
        )
    if not files:
        terminalreporter.write_line("vnllmtest --submission: no submission file was written", red=True)
    for planned in files:
        line = planned.describe(str(run_folder / planned.file) if run_folder is not None else None)
        terminalreporter.write_line(f"vnllmtest submission: {line}", green=planned.ready, red=not planned.ready)


def write_table(terminalreporter: Any, rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the header bold, rows whose last cell says FAIL red and PASS green."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        verdict = row[-1]
        terminalreporter.write_line(
            line, bold=number == 0, red=verdict.startswith("FAIL"), green=verdict.startswith("PASS")
        )


def show_coverage(terminalreporter: Any, summaries: Sequence[GroupSummary]) -> None:
    """Every judged group's verdict coverage, and every metric some items could not be scored on
    (an unreadable judge reply, no log-probabilities), with how many."""
    rows = [("suite", "model", "metric", "value", "unscored items")]
    for summary in summaries:
        for metric, found in summary.metrics.items():
            unscored = summary.unscored.get(metric, 0)
            if metric == VERDICT_COVERAGE or unscored:
                rows.append((summary.suite, summary.model, metric, found.describe(), str(unscored)))
    if len(rows) > 1:
        terminalreporter.section("vnllmtest coverage")
        write_table(terminalreporter, rows)


def show_comparison(terminalreporter: Any, comparison: Comparison, shown: int, run_folder: Path | None) -> None:
    """The paired differences, items only one run has, and the first `shown` flipped items with the
    command that re-runs all of them."""
    baseline = comparison.baseline
    terminalreporter.section("vnllmtest comparison with the baseline")
    terminalreporter.write_line(
        f"baseline {baseline.run_id} ({baseline.path}); differences are this run minus the baseline, "
        "paired on the items both scored"
    )
    for note in comparison.notes:
        terminalreporter.write_line(f"note: {note}", yellow=True)
    rows = [("suite", "model", "metric", "items", "baseline", "this run", "difference", "p (test)")]
    for found in comparison.differences:
        rows.append(
            (
                found.suite,
                found.model,
                found.metric,
                str(found.shared),
                found.baseline.describe(),
                found.current.describe(),
                found.difference.describe(signed=True),
                found.describe_p(),
            )
        )
    if len(rows) > 1:
        write_table(terminalreporter, rows)
    for skipped in comparison.incomparable:
        where = f"{skipped.suite} [{skipped.model}] {skipped.metric}"
        terminalreporter.write_line(f"{where}: not compared, {skipped.reason}", yellow=True)
    for covered in comparison.coverage:
        where = f"{covered.suite} [{covered.model}]"
        if covered.baseline_model is None:
            terminalreporter.write_line(f"{where}: the baseline has no results for this suite", yellow=True)
        elif covered.only_current or covered.only_baseline:
            terminalreporter.write_line(
                f"{where}: {len(covered.only_current)} items only in this run, {len(covered.only_baseline)} only in "
                "the baseline; not compared (listed in the report)",
                yellow=True,
            )
    regressions = len(comparison.regressions)
    terminalreporter.write_line(
        f"flipped: {regressions} regressions (pass -> miss), {len(comparison.flips) - regressions} fixes (miss -> pass)"
    )
    for flip in comparison.flips[:shown]:
        terminalreporter.write_line(_flip_line(flip), red=flip.direction == "regression")
    if len(comparison.flips) > shown:
        terminalreporter.write_line(f"... {len(comparison.flips) - shown} more in the report (--show-flips N)")
    if run_folder is not None and any(flip.nodeid for flip in comparison.flips):
        terminalreporter.write_line(f"re-run exactly the flipped items: pytest @{run_folder / FLIPPED_FILE}")


def _flip_line(flip: Flip) -> str:
    label = "REGRESSED" if flip.direction == "regression" else "FIXED"
    where = flip.nodeid or f"{flip.suite} [{flip.model}] {flip.id}"
    changes = ", ".join(
        f"{name} {flip.baseline_metrics[name]:.3f} -> {value:.3f}"
        for name, value in flip.metrics.items()
        if name in flip.baseline_metrics
    )
    return f"{label} {where}: {flip.baseline_status} -> {flip.status}" + (f" ({changes})" if changes else "")
