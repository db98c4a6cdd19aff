"""report.html's charts: per suite, one inline SVG panel a metric, a bar with its confidence
interval's whisker a model. With a baseline run, each model's bar has the baseline's beside it (an
outlined bar and whisker, on the items both runs scored), and the chart a legend."""

from __future__ import annotations

from typing import Any

from vnllmtest.report_html_data import Record, as_mapping, as_number, as_records, as_text, dig
from vnllmtest.report_html_parts import Results, esc, estimate, section, svg

PALETTE = ("#3b6db3", "#d9822b", "#3a9a5b", "#b04a8f", "#6f6f6f", "#1f8a9e")
WIDTH, PLOT_X0, PLOT_X1 = 660, 190, 580  # chart width and the plot area's x range
BAR, STEP, TITLE, AXIS = 16, 22, 22, 24  # bar height, bar pitch, panel title, axis
BASE_BAR, BASE_STEP, LEGEND = 8, 12, 24  # a baseline bar's height and the room it adds; the legend's row

Baselines = dict[tuple[str, str, str], Record]  # (suite, model, metric): a comparison's metric entry


def charts_section(results: Results, comparison: Any) -> str:
    baselines = _baselines(comparison)
    figures = []
    for suite in results.suites:
        panels = []
        compared = any(key[0] == suite for key in baselines)
        top = LEGEND if compared else 0
        for metric in results.metric_names(suite):
            bars = [
                (model, dig(found, "metrics", metric), baselines.get((suite, model, metric)))
                for model in results.models
                if (found := results.get(suite, model)) is not None
            ]
            panels.append(_panel(metric, bars, results.models, top))
            top += TITLE + sum(_pitch(bar) for bar in bars) + AXIS
        if not panels:
            continue
        if compared:
            panels.insert(0, _legend(as_text(dig(comparison, "baseline").get("run_id"))))
        size = f'viewBox="0 0 {WIDTH} {top}" width="{WIDTH}" height="{top}"'
        svg = f'<svg class="chart" {size} role="img">{"".join(panels)}</svg>'
        figures.append(f"<figure><figcaption>{esc(suite)}</figcaption>{svg}</figure>")
    return section("charts", "Charts", "".join(figures)) if figures else ""


def _baselines(comparison: Any) -> Baselines:
    """The comparison's metric entries that have a baseline value, by (suite, model, metric)."""
    entries = as_records(as_mapping(comparison).get("metrics"))
    keys = ("suite", "model", "metric")
    return {
        tuple(as_text(entry.get(k)) for k in keys): entry
        for entry in entries
        if as_number(dig(entry, "baseline").get("value")) is not None
    }


def _pitch(bar: tuple[str, Record, Record | None]) -> int:
    return STEP + (BASE_STEP if bar[2] is not None else 0)


def _legend(run_id: str) -> str:
    """This run's bars filled, the baseline's outlined."""
    parts = [
        svg("rect", x=PLOT_X0, y=4, width=14, height=10, fill=PALETTE[0]),
        svg("text", "this run", x=PLOT_X0 + 20, y=13),
        svg("rect", class_="baseline", x=PLOT_X0 + 90, y=6, width=14, height=6, stroke=PALETTE[0]),
        svg("text", f"baseline {run_id} (items both runs scored)", x=PLOT_X0 + 110, y=13),
    ]
    return f'<g class="legend">{"".join(parts)}</g>'


def _panel(metric: str, bars: list[tuple[str, Record, Record | None]], models: list[str], top: int) -> str:
    """One metric: a bar with a CI whisker per model (and the baseline's below it), over the metric's own axis."""
    scale = _axis(metric, bars)
    parts = [svg("text", metric, x=0, y=top + 15, class_="metric")]
    y = top + TITLE
    for model, found, baseline in bars:
        colour = PALETTE[models.index(model) % len(PALETTE)]
        parts.append(_bar(model, metric, found, y, colour, scale))
        if baseline is not None:
            parts.append(_baseline_bar(metric, baseline, y + STEP - 3, colour, scale))
        y += _pitch((model, found, baseline))
    parts.append(svg("line", class_="axis", x1=PLOT_X0, y1=y, x2=PLOT_X1, y2=y))
    for tick in _ticks(*scale):
        parts.append(svg("text", f"{tick:g}", class_="tick", x=_x(tick, scale), y=y + 15))
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
        svg("text", label, class_="label", x=PLOT_X0 - 8, y=y + 12),
    ]
    if value is None:
        parts.append(svg("text", "n/a", x=PLOT_X0 + 4, y=y + 12))
    else:
        parts += _mark(value, low, high, y, BAR, scale, class_="bar", fill=colour)
    return "<g>" + "".join(parts) + "</g>"


def _baseline_bar(metric: str, entry: Record, y: int, colour: str, scale: tuple[float, float]) -> str:
    """The baseline's estimate of `metric` on the items both runs scored, outlined in the model's colour."""
    found = dig(entry, "baseline")
    value, low, high = (as_number(found.get(key)) for key in ("value", "low", "high"))
    shared = as_number(entry.get("shared"))
    on = f" on {shared:g} shared items" if shared is not None else ""
    title = f"<title>baseline {esc(entry.get('baseline_model'))} {esc(metric)}: {estimate(found)}{esc(on)}</title>"
    mark = _mark(value or 0.0, low, high, y, BASE_BAR, scale, class_="baseline", stroke=colour)
    return f"<g>{title}{''.join(mark)}</g>"


def _mark(
    value: float, low: float | None, high: float | None, y: int, height: int, scale: tuple[float, float], **style: str
) -> list[str]:
    """A bar `height` high from the axis to `value`, the whisker of [low, high] over it, the value at the right."""
    parts = [svg("rect", x=PLOT_X0, y=y, width=_x(value, scale) - PLOT_X0, height=height, **style)]
    if low is not None and high is not None:
        left, right, middle, inset = _x(low, scale), _x(high, scale), y + height / 2, height // 5
        parts.append(svg("line", class_="whisker", x1=left, y1=middle, x2=right, y2=middle))
        for end in (left, right):
            parts.append(svg("line", class_="whisker", x1=end, y1=y + inset, x2=end, y2=y + height - inset))
    value_css = "baseline-value" if style.get("class_") == "baseline" else "value"
    parts.append(svg("text", f"{value:.1f}", class_=value_css, x=PLOT_X1 + 8, y=y + min(height, 12)))
    return parts


def _axis(metric: str, bars: list[tuple[str, Record, Record | None]]) -> tuple[float, float]:
    """0-100 for points; the rubric's 1-10 for judge scores, wider if an interval (the baseline's too) is."""
    if not metric.startswith("judge_"):
        return 0.0, 100.0
    shown = [found for _, found, _ in bars] + [dig(baseline, "baseline") for _, _, baseline in bars if baseline]
    return 1.0, max([10.0, *(as_number(found.get("high")) or 0.0 for found in shown)])


def _ticks(lo: float, hi: float) -> list[float]:
    step = 25.0 if lo == 0 else 3.0
    ticks = [lo + step * k for k in range(int((hi - lo) // step) + 1)]
    return ticks if ticks[-1] == hi else [*ticks, hi]


def _x(value: float, scale: tuple[float, float]) -> float:
    lo, hi = scale
    return PLOT_X0 + (min(max(value, lo), hi) - lo) / (hi - lo) * (PLOT_X1 - PLOT_X0)
