"""report.html's charts: per suite, one inline SVG panel a metric, a bar with its confidence
interval's whisker a model."""

from __future__ import annotations

from typing import Any

from vnllmtest.report_html_data import Record, as_number, dig
from vnllmtest.report_html_parts import Results, esc, estimate, section

PALETTE = ("#3b6db3", "#d9822b", "#3a9a5b", "#b04a8f", "#6f6f6f", "#1f8a9e")
WIDTH, PLOT_X0, PLOT_X1 = 660, 190, 580  # chart width and the plot area's x range
BAR, STEP, TITLE, AXIS = 16, 22, 22, 24  # bar height, bar pitch, panel title, axis


def charts_section(results: Results) -> str:
    figures = []
    for suite in results.suites:
        panels, top = [], 0
        for metric in results.metric_names(suite):
            bars = [
                (model, dig(found, "metrics", metric))
                for model in results.models
                if (found := results.get(suite, model)) is not None
            ]
            panels.append(_panel(metric, bars, results.models, top))
            top += TITLE + len(bars) * STEP + AXIS
        size = f'viewBox="0 0 {WIDTH} {top}" width="{WIDTH}" height="{top}"'
        svg = f'<svg class="chart" {size} role="img">{"".join(panels)}</svg>'
        figures.append(f"<figure><figcaption>{esc(suite)}</figcaption>{svg}</figure>")
    return section("charts", "Charts", "".join(figures)) if figures else ""


def _panel(metric: str, bars: list[tuple[str, Record]], models: list[str], top: int) -> str:
    """One metric: a bar with a CI whisker per model, over the metric's own axis."""
    scale = _axis(metric, bars)
    parts = [_svg("text", metric, x=0, y=top + 15, class_="metric")]
    for index, (model, found) in enumerate(bars):
        colour = PALETTE[models.index(model) % len(PALETTE)]
        parts.append(_bar(model, metric, found, top + TITLE + index * STEP, colour, scale))
    axis_y = top + TITLE + len(bars) * STEP
    parts.append(_svg("line", class_="axis", x1=PLOT_X0, y1=axis_y, x2=PLOT_X1, y2=axis_y))
    for tick in _ticks(*scale):
        parts.append(_svg("text", f"{tick:g}", class_="tick", x=_x(tick, scale), y=axis_y + 15))
    return "".join(parts)


def _bar(
    model: str,
    metric: str,
    found: Record,
    y: int,
    colour: str,
    scale: tuple[float, float],
) -> str:
    value, low, high = (as_number(found.get(key)) for key in ("value", "low", "high"))
    label = model if len(model) <= 26 else model[:25] + "…"
    parts = [
        f"<title>{esc(model)} {esc(metric)}: {estimate(found)}</title>",
        _svg("text", label, class_="label", x=PLOT_X0 - 8, y=y + 12),
    ]
    if value is None:
        parts.append(_svg("text", "n/a", x=PLOT_X0 + 4, y=y + 12))
        return "<g>" + "".join(parts) + "</g>"
    width = _x(value, scale) - PLOT_X0
    parts.append(_svg("rect", class_="bar", x=PLOT_X0, y=y, width=width, height=BAR, fill=colour))
    if low is not None and high is not None:
        left, right, middle = _x(low, scale), _x(high, scale), y + BAR / 2
        parts.append(_svg("line", class_="whisker", x1=left, y1=middle, x2=right, y2=middle))
        for end in (left, right):
            parts.append(_svg("line", class_="whisker", x1=end, y1=y + 3, x2=end, y2=y + BAR - 3))
    parts.append(_svg("text", f"{value:.1f}", x=PLOT_X1 + 8, y=y + 12))
    return "<g>" + "".join(parts) + "</g>"


def _svg(tag: str, text: str | None = None, **attributes: Any) -> str:
    """An SVG element; `class_` names `class`, `x_y` names `x-y`; all escaped."""
    pairs = []
    for name, value in attributes.items():
        value = f"{value:.1f}" if isinstance(value, float) else value
        pairs.append(f'{name.rstrip("_").replace("_", "-")}="{esc(value)}"')
    opening = f"<{tag} {' '.join(pairs)}"
    return f"{opening}/>" if text is None else f"{opening}>{esc(text)}</{tag}>"


def _axis(metric: str, bars: list[tuple[str, Record]]) -> tuple[float, float]:
    """0-100 for points; the rubric's 1-10 for judge scores, wider if an interval is."""
    if not metric.startswith("judge_"):
        return 0.0, 100.0
    return 1.0, max([10.0, *(as_number(found.get("high")) or 0.0 for _, found in bars)])


def _ticks(lo: float, hi: float) -> list[float]:
    step = 25.0 if lo == 0 else 3.0
    ticks = [lo + step * k for k in range(int((hi - lo) // step) + 1)]
    return ticks if ticks[-1] == hi else [*ticks, hi]


def _x(value: float, scale: tuple[float, float]) -> float:
    lo, hi = scale
    return PLOT_X0 + (min(max(value, lo), hi) - lo) / (hi - lo) * (PLOT_X1 - PLOT_X0)
