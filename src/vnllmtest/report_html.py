"""report.html: one self-contained page (inline CSS, JS and SVG) for a run folder.

Everything from a model or a dataset is escaped server-side; the script only shows, hides
and sorts item rows, and the page's content security policy lets nothing else run or load.
The page, its fonts and its run, gate, metric and breakdown sections are built here; the
charts, the baseline comparison, the items and the script in their own `report_html_*` modules.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from string import Template
from typing import Any

from vnllmtest.aggregate import MAX_BREAKDOWN_VALUES
from vnllmtest.gates import gate_outcome
from vnllmtest.metric_table import is_known_metric, metric_info
from vnllmtest.report_html_charts import charts_section
from vnllmtest.report_html_comparison import comparison_section
from vnllmtest.report_html_data import Record, as_mapping, as_number, as_records, as_text, dig, unique
from vnllmtest.report_html_items import items_section
from vnllmtest.report_html_parts import Results, esc, escaped_cells, html_row, html_table, number_text, section
from vnllmtest.report_html_script import PAGE_SCRIPT

INCOMPLETE = (
    '<p class="banner warn" id="incomplete">Incomplete run: interrupted or stopped '
    "early; numbers cover the items that finished.</p>"
)
SCALE_NOTE = (
    "<p>Values are points (0-100), judge scores (<code>judge_*</code>) are on the "
    "rubric's scale (1-10); all with 95% bootstrap confidence intervals.</p>"
)
RUN_FACTS = (
    ("Run id", "id"),
    ("Started", "started"),
    ("Finished", "finished"),
    ("Exit status", "exit_status"),
)

# Every block's fonts, first choice first: DejaVu draws all of Vietnamese (stacked tone marks included) in its
# sans and its monospace faces; Debian's fonts-dejavu-core installs both. The others cover macOS and Windows.
SANS_FONTS = '"DejaVu Sans","Segoe UI","Helvetica Neue",Arial,sans-serif'
MONO_FONTS = '"DejaVu Sans Mono",Menlo,Consolas,monospace'
FONTS_PACKAGE = "fonts-dejavu-core"

CSS = Template("""
body{font:14px/1.45 $sans;margin:1.5rem;color:#1d1d1f;background:#fff}
pre,code{font-family:$mono}input,select,button{font:inherit}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d5d5d5;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.banner{padding:.5rem .8rem;border-radius:4px;font-weight:600}
.bad{background:#fde2e1;color:#8a1c14}.ok{background:#e2f5e6;color:#1d5e2c}
.warn{background:#fff2cc;color:#6b4e00}
tr.fail td,tr.regression td,.worse{background:#fde2e1}
tr.fix td,.better{background:#e2f5e6}tr.skipped td{color:#777}tr.not-evaluated td{background:#fff8e1}
.status-passed{color:#1d5e2c}.status-missed{color:#8a5a00}
.status-error{color:#8a1c14;font-weight:600}figcaption{font-weight:600}
svg.chart text{font:12px $sans;fill:#1d1d1f}svg.chart .tick{fill:#666;text-anchor:middle}
svg.chart .label{text-anchor:end}svg.chart .metric{font-weight:600}
table.items td:not(:last-child){white-space:nowrap}
svg.chart .axis{stroke:#999}svg.chart .whisker{stroke:#1d1d1f;stroke-width:1.5}
.filters{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;margin:.5rem 0}
pre{white-space:pre-wrap;word-break:break-word;max-width:70rem;background:#f7f7f7;
padding:.4rem;margin:.2rem 0}summary{cursor:pointer;color:#3b6db3}
th button.sort{border:0;background:none;padding:0;font-weight:inherit;cursor:pointer}
th[aria-sort=ascending] button.sort::after{content:" ▲"}th[aria-sort=descending] button.sort::after{content:" ▼"}
svg.chart .baseline{fill:#fff;stroke-width:1.5}svg.chart .baseline-value{fill:#666}
table.flips td{white-space:nowrap}table.flips details,table.flips summary{display:inline}
""").substitute(sans=SANS_FONTS, mono=MONO_FONTS)


def source_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


# Only the page's own style and script may run, and nothing may be fetched.
CSP = f"default-src 'none'; base-uri 'none'; style-src {source_hash(CSS)}; script-src {source_hash(PAGE_SCRIPT)}"


def render_html(document: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> str:
    """The complete report.html for a parsed summary.json and the items.jsonl records."""
    run, manifest = as_mapping(document.get("run")), as_mapping(document.get("manifest"))
    rows = as_records(document.get("results"))
    seen = unique(r.get("model") for r in rows)
    declared = [m for m in as_mapping(manifest.get("models")) if m in seen]
    models = declared + sorted(set(seen) - set(declared))
    results = Results(rows, sorted(unique(r.get("suite") for r in rows)), models)
    body = [
        _run_section(run, manifest),
        _gates_section(document, run, rows),
        _not_evaluated_section(run),
        _metrics_section(results),
        charts_section(results, document.get("comparison")),
        _breakdowns_section(results),
        comparison_section(document.get("comparison")),
        items_section(as_records(items), results),
    ]
    title = esc(f"vnllmtest run {as_text(run.get('id'))}".strip())
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n{''.join(body)}<script>{PAGE_SCRIPT}</script>\n</body>\n</html>\n"
    )


def _run_section(run: Record, manifest: Record) -> str:
    rows = [f"<tr><th>{k}</th><td>{esc(run.get(v))}</td></tr>" for k, v in RUN_FACTS]
    content = [f"<table>{''.join(rows)}</table>"]
    if run.get("complete") is False:
        content.insert(0, INCOMPLETE)
    suites = sorted(as_mapping(manifest.get("suites")).items())
    data = [_data_entry(name, as_mapping(suite)) for name, suite in suites]
    if data:
        content.append(f"<p>Data:</p><ul>{''.join(data)}</ul>")
    files = [f"<li>{esc(found.get('description'))}</li>" for found in as_records(manifest.get("submissions"))]
    if files:
        intro = "Leaderboard submission (the answers are hidden: nothing was scored and no gate applies):"
        content.append(f"<p>{intro}</p><ul>{''.join(files)}</ul>")
    return section("run", "Run", "".join(content))


def _data_entry(name: str, suite: Record) -> str:
    notes = "".join(f"<br>note: {esc(note)}" for note in suite.get("data_notes") or [])
    return f"<li><code>{esc(name)}</code>: {esc(suite.get('data_origin'))}{notes}</li>"


GATE_CSS = {"pass": "pass", "FAIL": "fail", "skipped": "skipped", "not evaluated": "not-evaluated"}


def _gates_section(document: Record, run: Record, results: list[Record]) -> str:
    require_gates = bool(run.get("require_gates"))
    gates = [gate for r in results for gate in as_records(r.get("gates"))]
    outcomes = [(gate, *gate_outcome(_gate_state(gate), as_text(gate.get("reason")), require_gates)) for gate in gates]
    outcomes.sort(key=lambda found: found[1] != "FAIL")
    rows = []
    for gate, word, why in outcomes:
        shown = "<strong>FAIL</strong>" if word == "FAIL" else word
        verdict = f"{shown} {esc(why)}".strip()
        value = number_text(gate.get("value"), 1)
        cells = [*escaped_cells(gate, "suite model gate"), value, esc(gate.get("detail")), verdict]
        rows.append(html_row(cells, GATE_CSS[word]))
    table = html_table("Dataset|Model|Gate|Checked value|Estimate|Result", rows)
    return section("gates", "Gates", _gates_banner(document) + table)


def _gate_state(gate: Record) -> str:
    """The gate's state; summary.json files written before gates had one say `skipped` and `passed`."""
    if "state" in gate:
        return as_text(gate.get("state"))
    return "skipped" if gate.get("skipped") else "passed" if gate.get("passed") else "failed"


def _gates_banner(document: Record) -> str:
    """The run's verdict, as summary.json records it (computed once, for every output)."""
    headline, passed = document.get("gates_verdict"), document.get("gates_passed")
    if not isinstance(headline, str) or not isinstance(passed, bool):
        return '<p class="banner bad" id="gates-failed">No verdict recorded in summary.json.</p>'
    if not passed:
        return f'<p class="banner bad" id="gates-failed">{esc(headline)}</p>'
    css = "ok" if document.get("gates_evaluated") is True else "warn"
    return f'<p class="banner {css}" id="gates-verdict">{esc(headline)}</p>'


def _not_evaluated_section(run: Record) -> str:
    errors = as_records(run.get("collection_errors"))
    if not errors:
        return ""
    entries = "".join(f"<li><code>{esc(e.get('path'))}</code><pre>{esc(e.get('error'))}</pre></li>" for e in errors)
    intro = "<p>These suites could not be collected, so none of their gates passed:</p>"
    return section("not-evaluated", "Not evaluated", f"{intro}<ul>{entries}</ul>")


def _metrics_section(results: Results) -> str:
    rows = []
    for suite in results.suites:
        for metric in results.metric_names(suite):
            cells = [
                results.cell(suite, m, "metrics", metric) + _unscored(results.get(suite, m), metric)
                for m in results.models
            ]
            rows.append(html_row([esc(suite), esc(metric), *cells]))
    if not rows:
        return ""
    table = html_table(["Dataset", "Metric", *results.models], rows)
    return section("metrics", "Metrics", SCALE_NOTE + table + _definitions(results))


def _definitions(results: Results) -> str:
    """What each metric computes, with its definition version."""
    names = sorted({name for suite in results.suites for name in results.metric_names(suite)})
    known = [(name, metric_info(name)) for name in names if is_known_metric(name)]
    entries = "".join(
        f"<li><code>{esc(name)}</code> (v{info.version}): {esc(info.summary)}</li>" for name, info in known
    )
    return f'<ul class="definitions">{entries}</ul>' if entries else ""


def _unscored(result: Record | None, metric: str) -> str:
    """How many items had no value for the metric, after its estimate, when any."""
    count = as_number(dig(result, "unscored").get(metric))
    return f" ({count:g} unscored)" if count else ""


def _breakdowns_section(results: Results) -> str:
    rows = []
    for suite in results.suites:
        for tag, value, metric in _breakdown_keys(results.of_suite(suite)):
            path = ("breakdowns", tag, value, metric)
            cells = [results.cell(suite, model, *path) for model in results.models]
            name = f"{esc(tag)}={esc(value)}"
            rows.append(html_row([esc(suite), name, esc(metric), *cells]))
    if not rows:
        return ""
    table = html_table(["Dataset", "Breakdown", "Metric", *results.models], rows)
    return section("breakdowns", "Breakdowns", table)


def _breakdown_keys(group: list[Record]) -> Iterator[tuple[str, str, str]]:
    """(tag, value, metric) over one suite's results, for tags with few values."""
    for tag in unique(tag for r in group for tag in dig(r, "breakdowns")):
        values = unique(value for r in group for value in dig(r, "breakdowns", tag))
        if len(values) > MAX_BREAKDOWN_VALUES:
            continue
        for value in values:
            metrics = (m for r in group for m in dig(r, "breakdowns", tag, value))
            yield from ((tag, value, metric) for metric in unique(metrics))
