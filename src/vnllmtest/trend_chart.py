"""trend.html's charts: one inline SVG line chart per (suite, metric) over the checkpoints: each point's value
(a dot with its title), its 95% CI as a shaded band and a whisker, a downward triangle under a point whose step
is a significant drop, and `≠` over a point whose step could not compare the metric (definitions differ). With
many points, every k-th one is numbered on the x axis (k = ceil(points / 15)); every dot has its title."""

from __future__ import annotations

import math

from vnllmtest.metrics import Estimate
from vnllmtest.report_html_parts import esc, svg
from vnllmtest.trend import Trend

WIDTH, HEIGHT = 660, 210
X0, X1, Y0, Y1 = 64, 630, 34, 170  # the plot area
TICK_STEPS = (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100)
COLOUR = "#3b6db3"
LABELLED = 15  # the most points numbered on the x axis


def trend_chart(trend: Trend, suite: str, metric: str) -> str:
    """The chart of `metric` in `suite`, one dot per point that has a value."""
    estimates = trend.estimates[(suite, metric)]
    shown = [e for e in estimates if _has_value(e)]
    parts = [svg("text", metric, x=0, y=16, class_="metric")]
    scale = _scale([bound for e in shown for bound in (e.value, e.low, e.high) if not math.isnan(bound)])
    for tick in _ticks(scale):
        y = _y(tick, scale)
        parts.append(svg("line", class_="grid", x1=X0, y1=y, x2=X1, y2=y))
        parts.append(svg("text", f"{tick:g}", class_="label", x=X0 - 6, y=y + 4))
    xs = [_x(index, len(estimates)) for index in range(len(estimates))]
    every = math.ceil(len(estimates) / LABELLED)
    missing = trend.without_value[(suite, metric)]
    for segment in _segments(estimates):
        parts.append(_band([(xs[i], estimates[i]) for i in segment], scale))
        line = " ".join(f"{xs[i]:.1f},{_y(estimates[i].value, scale):.1f}" for i in segment)
        parts.append(svg("polyline", class_="trend", points=line, stroke=COLOUR))
    for index, (x, found) in enumerate(zip(xs, estimates, strict=True)):
        point = trend.points[index]
        if index % every == 0:
            parts.append(svg("text", str(point.number), class_="tick", x=x, y=Y1 + 30))
        if _has_value(found):
            lacking = f" ({missing[index]} without a value)" if missing[index] else ""
            parts.append(_dot(x, found, scale, f"{point.number}: {point.label}: {found.describe()}{lacking}"))
        else:
            title = f"<title>{esc(f'{point.number}: {point.label}: n/a')}</title>"
            parts.append(f'<g>{title}{svg("text", "×", class_="tick", x=x, y=Y1 - 4)}</g>')
        parts += _step_mark(trend, suite, metric, index, x, found, scale)
    size = f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
    label = f"{suite} {metric} over {len(estimates)} checkpoints"
    return f'<svg class="chart trend" {size} role="img" aria-label="{esc(label)}">{"".join(parts)}</svg>'


def _has_value(found: Estimate) -> bool:
    return found.n > 0 and not math.isnan(found.value)


def _segments(estimates: list[Estimate]) -> list[list[int]]:
    """Runs of consecutive points that have a value (a point without one breaks the line)."""
    segments: list[list[int]] = []
    for index, found in enumerate(estimates):
        if not _has_value(found):
            continue
        if segments and segments[-1][-1] == index - 1:
            segments[-1].append(index)
        else:
            segments.append([index])
    return segments


def _band(points: list[tuple[float, Estimate]], scale: tuple[float, float, float]) -> str:
    """The CI band: the upper bounds left to right, then the lower ones back."""
    upper = [f"{x:.1f},{_y(_bound(e.high, e), scale):.1f}" for x, e in points]
    lower = [f"{x:.1f},{_y(_bound(e.low, e), scale):.1f}" for x, e in reversed(points)]
    return svg("polygon", class_="band", points=" ".join(upper + lower), fill=COLOUR)


def _bound(bound: float, found: Estimate) -> float:
    return found.value if math.isnan(bound) else bound


def _dot(x: float, found: Estimate, scale: tuple[float, float, float], title: str) -> str:
    low, high = (_y(_bound(b, found), scale) for b in (found.low, found.high))
    parts = [
        f"<title>{esc(title)}</title>",
        svg("line", class_="whisker", x1=x, y1=low, x2=x, y2=high),
        svg("circle", class_="point", cx=x, cy=_y(found.value, scale), r=4, fill=COLOUR),
    ]
    return "<g>" + "".join(parts) + "</g>"


def _step_mark(
    trend: Trend, suite: str, metric: str, index: int, x: float, found: Estimate, scale: tuple[float, float, float]
) -> list[str]:
    """A drop's triangle under the point, or `≠` where the step into it did not compare the metric."""
    step = trend.step_into(index)
    if step is None:
        return []
    against = trend.steps[step].against + 1
    tested = trend.result(step, suite, metric)
    if tested is not None and tested.drop:
        y = _y(_bound(found.low, found), scale) + 6
        d = tested.difference
        title = (
            f"significant drop against point {against}: {d.difference.describe(signed=True)}, "
            f"p {d.describe_p()}, Holm p {tested.adjusted_p:.3g}"
        )
        triangle = svg("path", class_="drop", d=f"M{x - 5:.1f},{y:.1f}h10l-5,9z")
        return [f"<g><title>{esc(title)}</title>{triangle}</g>"]
    untested = trend.not_tested(step, suite, metric)
    if untested is None or not untested.definitions:
        return []
    title = f"not compared with point {against}: {untested.reason}"
    return [f'<g><title>{esc(title)}</title>{svg("text", "≠", class_="incomparable", x=x, y=Y0 - 6)}</g>']


def _scale(bounds: list[float]) -> tuple[float, float, float]:
    """The y range (bottom, top) around every value and bound, its ends multiples of a round tick step."""
    if not bounds:
        return 0.0, 100.0, 25.0
    low, high = min(bounds), max(bounds)
    for step in TICK_STEPS:
        bottom, top = math.floor(low / step) * step, math.ceil(high / step) * step
        if (top - bottom) / step <= 6:
            return bottom, max(top, bottom + step), step
    return low, high, high - low  # wider than any metric this vnllmtest reports


def _ticks(scale: tuple[float, float, float]) -> list[float]:
    bottom, top, step = scale
    return [bottom + step * k for k in range(int(round((top - bottom) / step)) + 1)]


def _x(index: int, count: int) -> float:
    return (X0 + X1) / 2 if count == 1 else X0 + 16 + index * (X1 - X0 - 32) / (count - 1)


def _y(value: float, scale: tuple[float, float, float]) -> float:
    bottom, top, _ = scale
    return Y1 - (value - bottom) / (top - bottom) * (Y1 - Y0)
