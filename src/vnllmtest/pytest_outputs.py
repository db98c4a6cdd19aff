"""What a run adds to pytest's own outputs: aligned tables and the baseline comparison in the
terminal summary, and the gates as test cases in JUnit XML (`--junitxml`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import xml_key
from _pytest.reports import TestReport

from vnllmtest.aggregate import GateResult, GroupSummary
from vnllmtest.comparison import Comparison, Flip
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


def show_comparison(terminalreporter: Any, comparison: Comparison, shown: int, run_folder: Path | None) -> None:
    """The paired differences, items only one run has, and the first `shown` flipped items with the
    command that re-runs all of them."""
    baseline = comparison.baseline
    terminalreporter.section("vnllmtest comparison with the baseline")
    terminalreporter.write_line(
        f"baseline {baseline.run_id} ({baseline.path}); differences are this run minus the baseline, "
        "paired on the items both scored"
    )
    rows = [("suite", "model", "metric", "items", "baseline", "this run", "difference", "p (test)")]
    for found in comparison.differences:
        p_value = f"{found.p_value:.3g} ({found.test})" if found.shared else "n/a"
        rows.append(
            (
                found.suite,
                found.model,
                found.metric,
                str(found.shared),
                found.baseline.describe(),
                found.current.describe(),
                found.difference.describe(signed=True),
                p_value,
            )
        )
    if len(rows) > 1:
        write_table(terminalreporter, rows)
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


def gates_to_junit(config: pytest.Config, summaries: Sequence[GroupSummary], suite_paths: Mapping[str, str]) -> None:
    """One JUnit test case per gate (`<suite file>::gate[<model>:<gate>]`), failed or skipped like the gate."""
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for summary in summaries:
        location = _relative(Path(suite_paths.get(summary.suite, summary.suite)), config.rootpath)
        for gate in summary.gates:
            for report in _gate_reports(location, summary.model, gate):
                xml.pytest_runtest_logreport(report)


def _gate_reports(location: str, model: str, gate: GateResult) -> tuple[TestReport, TestReport]:
    name = f"gate[{model}:{gate.gate}]"
    nodeid = f"{location}::{name}"
    if gate.skipped:
        outcome, longrepr = "skipped", (location, 0, f"Skipped: {gate.reason}")
    elif gate.passed:
        outcome, longrepr = "passed", None
    else:
        outcome, longrepr = "failed", f"gate failed: {gate.gate}: {gate.reason}; {gate.detail}"
    properties = [("gate", gate.gate), ("value", gate.value), ("estimate", gate.detail), ("reason", gate.reason)]
    where = (location, None, name)
    call = TestReport(nodeid, where, {}, outcome, longrepr, "call")
    teardown = TestReport(nodeid, where, {}, "passed", None, "teardown", user_properties=properties)
    return call, teardown


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
