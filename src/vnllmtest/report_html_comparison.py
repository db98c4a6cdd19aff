"""report.html's comparison with the baseline run: paired metric differences, item coverage and
the items whose status flipped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vnllmtest.report_html_data import Record, as_mapping, as_number, as_records, dig, unique
from vnllmtest.report_html_parts import esc, escaped_cells, estimate, html_row, html_table, number_text, section


def comparison_section(comparison: Any) -> str:
    if not isinstance(comparison, Mapping):
        return ""
    baseline = as_mapping(comparison.get("baseline"))
    run_id, path = esc(baseline.get("run_id")), esc(baseline.get("path"))
    content = [
        f"<p>Baseline run <code>{run_id}</code> at <code>{path}</code>.</p>",
        _differences(as_records(comparison.get("metrics"))),
        _coverage(as_records(comparison.get("coverage"))),
        _flips(as_records(comparison.get("flips"))),
    ]
    return section("comparison", "Comparison with the baseline", "".join(content))


def _differences(entries: list[Record]) -> str:
    rows = []
    for entry in entries:
        difference = as_mapping(entry.get("difference"))
        low, high = as_number(difference.get("low")), as_number(difference.get("high"))
        worse, better = high is not None and high < 0, low is not None and low > 0
        css = "worse" if worse else "better" if better else ""
        cells = escaped_cells(entry, "suite model baseline_model metric shared")
        cells += [estimate(entry.get("current")), estimate(entry.get("baseline"))]
        cells.append(f'<span class="{css}">{estimate(difference)}</span>')
        cells += [number_text(entry.get("p_value"), 3), esc(entry.get("test"))]
        rows.append(html_row(cells))
    header = "Dataset|Model|Baseline model|Metric|Shared|Current|Baseline|Difference|p|Test"
    return "<h3>Paired differences</h3>" + html_table(header, rows)


def _coverage(entries: list[Record]) -> str:
    rows = []
    for entry in entries:
        ids = [_ids(entry.get("only_current")), _ids(entry.get("only_baseline"))]
        rows.append(html_row([*escaped_cells(entry, "suite model baseline_model shared"), *ids]))
    header = "Dataset|Model|Baseline model|Shared|Only in this run|Only in the baseline"
    return "<h3>Coverage</h3>" + html_table(header, rows)


def _ids(ids: Any) -> str:
    ids = [i for i in ids or [] if i is not None]
    return f"{len(ids)}: {', '.join(esc(i) for i in ids)}" if ids else "0"


def _flips(flips: list[Record]) -> str:
    rows = []
    for flip in sorted(flips, key=lambda f: f.get("direction") != "regression"):
        keys = "suite model baseline_model id direction baseline_status status"
        direction = flip.get("direction")
        css = direction if direction in ("regression", "fix") else ""
        rows.append(html_row([*escaped_cells(flip, keys), _changes(flip), esc(flip.get("nodeid"))], css))
    header = "Dataset|Model|Baseline model|Id|Direction|Baseline status|Status|Metrics|Node id"
    return f"<h3>Flipped items ({len(rows)})</h3>" + html_table(header, rows, "flips")


def _changes(flip: Record) -> str:
    """One line: the headline metric's change (the judge's score for a judged item, else the first metric
    that changed); the other metrics collapsed behind it."""
    now, before = dig(flip, "metrics"), dig(flip, "baseline_metrics")
    names = unique([*before, *now])
    if len(names) < 2:
        return "".join(_change(name, before, now) for name in names)
    headline = _headline(names, before, now)
    rest = "<br>".join(_change(name, before, now) for name in names if name != headline)
    return f"{_change(headline, before, now)} <details><summary>{len(names) - 1} more</summary>{rest}</details>"


def _headline(names: list[str], before: Record, now: Record) -> str:
    judged = [name for name in ("judge_score", "judge_overall") if name in names]
    changed = [name for name in names if before.get(name) != now.get(name)]
    return (judged or changed or names)[0]


def _change(name: str, before: Record, now: Record) -> str:
    was, is_ = as_number(before.get(name)), as_number(now.get(name))
    delta = f" ({is_ - was:+.3f})" if was is not None and is_ is not None else ""
    return f"{esc(name)} {number_text(before.get(name), 3)} → {number_text(now.get(name), 3)}{delta}"
