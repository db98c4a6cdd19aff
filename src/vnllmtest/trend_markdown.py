"""trend.md (and what `vnllmtest trend` prints): the verdict, the checkpoints, each suite's metrics over them with
their CIs, items without a value and the significant drops marked, every step's paired tests with Holm-adjusted p-values
and what it could not test, and the flipped items. Text from a run is kept to one line and `|` escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence

from vnllmtest.clipping import shown
from vnllmtest.report import markdown_row
from vnllmtest.trend import Point, Step, Trend

LISTED_IDS = 50  # ids listed per step and direction; the rest are counted


def trend_markdown(trend: Trend) -> str:
    text, _ = verdict(trend)
    lines = [f"# vnllmtest trend over {len(trend.points)} checkpoints", "", f"**{_line(text)}**", ""]
    header = ["#", "Model", "Run folder", "Run id", "Path"]
    lines.append(_table(header, [[(c, "") for c in point_cells(p)] for p in trend.points]))
    lines += ["", _line(method_text(trend))]
    found = notes(trend)
    lines += [""] + [f"- Note: {_line(note)}" for note in found] if found else []
    for suite in trend.suites():
        lines += ["", f"## {_line(suite)}", "", _table(*metric_table(trend, suite))]
    lines += ["", "## Steps", "", _table(*steps_table(trend)), "", "## Flipped items"]
    for step in trend.steps:
        lines += ["", f"### {_line(step_heading(trend, step))}", ""]
        lines += [f"- {_line(text)}{': ' + listed(ids) if ids else ''}" for text, ids in step_items(trend, step)]
    return "\n".join(lines) + "\n"


def verdict(trend: Trend) -> tuple[str, bool]:
    """The trend's verdict in one sentence, and whether it is bad: the significant drops, then the steps that
    tested nothing; else no significant drop, with the correction."""
    parts = []
    if trend.drops:
        steps = ", ".join(
            f"{d.difference.suite} {d.difference.metric} at {trend.step_name(trend.steps[d.step])}" for d in trend.drops
        )
        parts.append(f"{len(trend.drops)} significant drop(s): {steps}.")
    for n in trend.idle_steps:
        parts.append(f"Step {trend.step_name(trend.steps[n])} tested nothing ({trend.idle_reason(n)}).")
    if not trend.drops:
        parts.append(f"No significant drop{' among the steps tested' if parts else ''} ({trend.correction}).")
    return " ".join(parts), bool(trend.drops or trend.idle_steps)


def method_text(trend: Trend) -> str:
    """How the points were compared and tested, in one paragraph (the page shows the same)."""
    if trend.reference is None:
        against = "Each point is compared with the previous one"
    else:
        against = f"Each point is compared with point {trend.reference + 1} ({trend.points[trend.reference].label})"
    return (
        f"Values are each run's own, with 95% bootstrap CIs. {against}, paired on the items both scored (McNemar for "
        "0/1 metrics on independent items, else a sign-flip permutation test by item or cluster). p-values are "
        f"adjusted with {trend.correction} (every step and metric tested); a step is a significant drop when the "
        f"adjusted p is below {trend.alpha:g} and the difference is negative."
    )


def notes(trend: Trend) -> list[str]:
    """What was left out or assumed: undefined metrics, runs without stored definitions, runs given twice."""
    found = list(dict.fromkeys(note for step in trend.steps for note in step.comparison.notes))
    if trend.unknown:
        found.append(f"not shown: {', '.join(trend.unknown)}, which this vnllmtest does not define")
    return found + trend.repeated()


Cell = tuple[str, str]  # text, and its emphasis: "" or "worse", "better", "muted"
Table = tuple[list[str], list[list[Cell]]]  # header, rows


def metric_table(trend: Trend, suite: str) -> Table:
    """One row a metric: its estimate at each point with the items without a value (errored or unscored), tagged
    with the definition version where versions differ along the row, and marked where the step into that point is
    a significant drop."""
    header = ["Metric", *(f"{p.number}: {p.label}" for p in trend.points)]
    rows = []
    for (of_suite, metric), estimates in trend.estimates.items():
        if of_suite != suite:
            continue
        versions, missing = trend.versions[metric], trend.without_value[(suite, metric)]
        cells: list[Cell] = [(metric, "")]
        for index, found in enumerate(estimates):
            text = found.describe() + (f" ({missing[index]} without a value)" if missing[index] else "")
            if len(set(versions)) > 1:
                text += f" (v{'?' if versions[index] is None else versions[index]})"
            step = trend.step_into(index)
            tested = None if step is None else trend.result(step, suite, metric)
            drop = tested is not None and tested.drop
            cells.append((f"{text} ▼ drop vs {trend.steps[step].against + 1}" if drop else text, "worse" * drop))
        rows.append(cells)
    return header, rows


def steps_table(trend: Trend) -> Table:
    """Every paired test with its adjusted p and verdict, then the metrics a step did not test and why. A step
    "A vs B" compares point A with point B on the items both scored: the values are over those items."""
    other = "Previous" if trend.reference is None else "Reference"
    header = ["Step", "Dataset", "Metric", "Shared items", "Point (shared items)", f"{other} (shared items)"]
    header += [f"Difference (point − {other.lower()})", "p (test)", "Holm p", "Result"]
    rows = []
    for tested in trend.tested:
        d = tested.difference
        name = trend.step_name(trend.steps[tested.step])
        emphasis = "worse" if tested.drop else "better" if tested.significant else ""
        cells = [name, d.suite, d.metric, str(d.shared), d.current.describe(), d.baseline.describe()]
        cells += [d.difference.describe(signed=True), d.describe_p(), f"{tested.adjusted_p:.3g}"]
        rows.append([(cell, "") for cell in cells] + [(tested.verdict, emphasis)])
    for skipped in trend.untested:
        cells = [trend.step_name(trend.steps[skipped.step]), skipped.suite, skipped.metric, *["—"] * 6]
        rows.append([(cell, "") for cell in cells] + [(f"not tested: {skipped.reason}", "muted")])
    return header, rows


def step_items(trend: Trend, step: Step) -> list[tuple[str, list[str]]]:
    """The step's flipped items by suite and direction, and the items (or suites) only one point has, each
    as a description and the ids it lists."""
    comparison = step.comparison
    later, earlier = trend.points[step.point], trend.points[step.against]
    found = []
    for direction, change in (("regression", "pass → miss"), ("fix", "miss → pass")):
        flips = [flip for flip in comparison.flips if flip.direction == direction]
        for suite in dict.fromkeys(flip.suite for flip in flips):
            found.append((f"{suite}, {change}", [flip.id for flip in flips if flip.suite == suite]))
    covered_suites = {covered.suite for covered in comparison.coverage}
    for suite in dict.fromkeys(item.suite for item in earlier.run.items if item.suite not in covered_suites):
        found.append((f"{suite}: only point {earlier.number} has results; not compared", []))
    for covered in comparison.coverage:
        if covered.baseline_model is None:
            found.append((f"{covered.suite}: only point {later.number} has results; not compared", []))
            continue
        for ids, number in ((covered.only_current, later.number), (covered.only_baseline, earlier.number)):
            if ids:
                count = f"{len(ids)} item{'' if len(ids) == 1 else 's'}"
                found.append((f"{covered.suite}: {count} only in point {number}, not compared", ids))
    return found


def step_heading(trend: Trend, step: Step) -> str:
    later, earlier = trend.points[step.point], trend.points[step.against]
    regressions = len(step.comparison.regressions)
    fixes = len(step.comparison.flips) - regressions
    return (
        f"Step {trend.step_name(step)}: {later.label} against {earlier.label} "
        f"({regressions} pass → miss, {fixes} miss → pass)"
    )


def listed(ids: Sequence[str], limit: int = LISTED_IDS) -> str:
    """Ids in code spans on one line (a long id's middle cut out and counted), the ones past `limit` counted."""
    shown_ids = ", ".join(_code(shown(item, 80)) for item in ids[:limit])
    return shown_ids + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _code(text: str) -> str:
    """`text` as a Markdown code span: fenced by one backtick more than its longest run of them, and padded
    with a space where it starts or ends with one (Markdown strips one space from each side)."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else text
    return fence + padded + fence


def _line(text: str) -> str:
    """Text for a heading, a bullet or a paragraph: one line, about 2,000 characters at most."""
    return shown(text, 2000)


def point_cells(point: Point) -> list[str]:
    return [str(point.number), point.model, point.folder, point.run.run_id, str(point.run.path)]


def _table(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A Markdown table; emphasised cells in bold."""
    lines = [markdown_row([shown(text, 400) for text in header]), markdown_row(["---"] * len(header))]
    for row in rows:
        lines.append(markdown_row([f"**{shown(text, 400)}**" if css in ("worse", "better") else shown(text, 400)
                                   for text, css in row]))
    return "\n".join(lines if rows else [*lines, markdown_row(["none"])])
