"""What a run adds to pytest's own outputs: aligned tables and the baseline comparison in the
terminal summary, and the gates as test cases in JUnit XML (`--junitxml`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import xml_key
from _pytest.reports import TestReport

from vnllmtest.aggregate import GroupSummary
from vnllmtest.comparison import Comparison, Flip
from vnllmtest.gates import GateResult, gate_outcome
from vnllmtest.metric_table import VERDICT_COVERAGE
from vnllmtest.report import FLIPPED_FILE


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


def gates_to_junit(
    config: pytest.Config, summaries: Sequence[GroupSummary], suite_paths: Mapping[str, str], require_gates: bool
) -> None:
    """One JUnit test case per gate (`<suite file>::gate[<model>:<gate>]`): passed, failed, or skipped
    with the reason (`not evaluated: ...` for part of a suite), failed too under --require-gates."""
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for summary in summaries:
        location = _relative(Path(suite_paths.get(summary.suite, summary.suite)), config.rootpath)
        for gate in summary.gates:
            for report in _gate_reports(location, summary.model, gate, require_gates):
                xml.pytest_runtest_logreport(report)


def _gate_reports(location: str, model: str, gate: GateResult, require_gates: bool) -> tuple[TestReport, TestReport]:
    name = f"gate[{model}:{gate.gate}]"
    nodeid = f"{location}::{name}"
    word, why = gate_outcome(gate.state, gate.reason, require_gates)
    if word == "pass":
        outcome, longrepr = "passed", None
    elif word == "FAIL":
        outcome, longrepr = "failed", f"gate failed: {gate.gate}: {why}; {gate.detail}"
    else:
        message = why if word == "skipped" else f"{word}: {why}"  # e.g. "not evaluated: 1 of 4 items ran; ..."
        outcome, longrepr = "skipped", (location, 0, f"Skipped: {message}")
    properties = [("gate", gate.gate), ("state", gate.state), ("value", gate.value), ("estimate", gate.detail)]
    properties.append(("reason", gate.reason))
    where = (location, None, name)
    call = TestReport(nodeid, where, {}, outcome, longrepr, "call")
    teardown = TestReport(nodeid, where, {}, "passed", None, "teardown", user_properties=properties)
    return call, teardown


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
