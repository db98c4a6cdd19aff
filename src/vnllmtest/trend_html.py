"""trend.html: one self-contained page (inline CSS and SVG, no script) for a trend over checkpoints, with
report.html's fonts and styles. Everything from a run (labels, paths, ids, suite and metric names) is escaped,
and the page's content security policy lets nothing run or load."""

from __future__ import annotations

from vnllmtest.report_html import CSS, source_hash
from vnllmtest.report_html_parts import esc, html_row, html_table, section
from vnllmtest.trend import Trend
from vnllmtest.trend_chart import trend_chart
from vnllmtest.trend_markdown import (
    Table,
    method_text,
    metric_table,
    notes,
    point_cells,
    step_heading,
    step_items,
    steps_table,
    verdict,
)

TREND_CSS = CSS + """
svg.trend .grid{stroke:#e4e4e4}svg.trend .band{fill-opacity:.18;stroke:none}
svg.trend .trend{fill:none;stroke-width:2}svg.trend .drop{fill:#c0392b}
svg.trend .incomparable{fill:#8a5a00;text-anchor:middle;font-weight:600}
.worse{font-weight:600}.muted{color:#777}ul.ids{max-width:70rem}
td,th,code,li,h3,figcaption{overflow-wrap:anywhere}
"""
CHART_LEGEND = (
    '<p class="muted">Line and dots: each point\'s value; band and whiskers: its 95% CI; ▼: the step into the point '
    "is a significant drop; ≠: not compared there (definitions differ); ×: no value. The x axis numbers the points "
    "(every k-th one when there are many; each dot's title names its point).</p>"
)
CSP = f"default-src 'none'; base-uri 'none'; style-src {source_hash(TREND_CSS)}"


def render_trend_html(trend: Trend) -> str:
    title = esc(f"vnllmtest trend over {len(trend.points)} checkpoints")
    body = [
        _points_section(trend),
        _charts_section(trend),
        _metrics_section(trend),
        section("steps", "Steps", _table(steps_table(trend), "steps")),
        _flips_section(trend),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{TREND_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n{''.join(body)}</body>\n</html>\n"
    )


def _points_section(trend: Trend) -> str:
    rows = [html_row(esc(cell) for cell in point_cells(point)) for point in trend.points]
    table = html_table("#|Model|Run folder|Run id|Path", rows, "points")
    text, bad = verdict(trend)
    banner = f'<p class="banner {"bad" if bad else "ok"}" id="drops">{esc(text)}</p>'
    found = "".join(f"<li>{esc(note)}</li>" for note in notes(trend))
    method = f'<p id="method">{esc(method_text(trend))}</p>'
    return section("points", "Checkpoints", banner + table + method + (f"<ul>{found}</ul>" if found else ""))


def _charts_section(trend: Trend) -> str:
    figures = []
    for suite in trend.suites():
        charts = "".join(trend_chart(trend, suite, metric) for of_suite, metric in trend.estimates if of_suite == suite)
        figures.append(f'<figure data-suite="{esc(suite)}"><figcaption>{esc(suite)}</figcaption>{charts}</figure>')
    return section("charts", "Charts", CHART_LEGEND + "".join(figures)) if figures else ""


def _metrics_section(trend: Trend) -> str:
    tables = [f"<h3>{esc(suite)}</h3>{_table(metric_table(trend, suite), 'metrics')}" for suite in trend.suites()]
    return section("metrics", "Metrics", "".join(tables))


def _flips_section(trend: Trend) -> str:
    parts = []
    for step in trend.steps:
        entries = []
        for text, ids in step_items(trend, step):
            listed = ", ".join(f"<code>{esc(item)}</code>" for item in ids)
            entries.append(f"<li>{esc(text)}{': ' + listed if ids else ''}</li>")
        parts.append(f"<h3>{esc(step_heading(trend, step))}</h3><ul class=\"ids\">{''.join(entries)}</ul>")
    return section("flips", "Flipped items", "".join(parts))


def _table(table: Table, css: str) -> str:
    header, rows = table
    cells = [[f'<span class="{css_class}">{esc(text)}</span>' if css_class else esc(text) for text, css_class in row]
             for row in rows]
    return html_table(header, [html_row(row) for row in cells], css)
