"""report.html: one self-contained page (inline CSS, JS and SVG) for a run folder.

Everything from a model or a dataset is escaped server-side; the script only shows and
hides item rows, and the page's content security policy lets nothing else run or load.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from vnllmtest.aggregate import MAX_BREAKDOWN_VALUES, STATUSES
from vnllmtest.clipping import clip
from vnllmtest.gates import gate_outcome
from vnllmtest.metric_table import is_known_metric, metric_info

Record = Mapping[str, Any]

SHOWN_CHARS = 20_000  # the most of one text (prompt, output, thinking) an item's details show
PALETTE = ("#3b6db3", "#d9822b", "#3a9a5b", "#b04a8f", "#6f6f6f", "#1f8a9e")
WIDTH, PLOT_X0, PLOT_X1 = 660, 190, 580  # chart width and the plot area's x range
BAR, STEP, TITLE, AXIS = 16, 22, 22, 24  # bar height, bar pitch, panel title, axis
INCOMPLETE = (
    '<p class="banner warn" id="incomplete">Incomplete run: interrupted or stopped '
    "early; numbers cover the items that finished.</p>"
)
SCALE_NOTE = (
    "<p>Values are points (0-100), judge scores (<code>judge_*</code>) are on the "
    "rubric's scale (1-10); all with 95% bootstrap confidence intervals.</p>"
)
TEXT_FILTER = (
    '<input id="filter-text" type="search" placeholder="Filter: id, prompt, output…" aria-label="Filter items by text">'
)
RUN_FACTS = (
    ("Run id", "id"),
    ("Started", "started"),
    ("Finished", "finished"),
    ("Exit status", "exit_status"),
)
DETAIL_FIELDS = (
    ("Output", "output"),
    ("Extracted answer", "answer"),
    ("Thinking", "thinking"),
    ("Message", "message"),
)

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1d1d1f;background:#fff}
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
svg.chart text{font:12px system-ui,sans-serif;fill:#1d1d1f}svg.chart .tick{fill:#666;text-anchor:middle}
svg.chart .label{text-anchor:end}svg.chart .metric{font-weight:600}
table.items td:not(:last-child){white-space:nowrap}
svg.chart .axis{stroke:#999}svg.chart .whisker{stroke:#1d1d1f;stroke-width:1.5}
.filters{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;margin:.5rem 0}
pre{white-space:pre-wrap;word-break:break-word;max-width:70rem;background:#f7f7f7;
padding:.4rem;margin:.2rem 0}summary{cursor:pointer;color:#3b6db3}
"""

SCRIPT = """
(() => {
  "use strict";
  const rows = Array.from(document.querySelectorAll("tr.item-row"));
  const texts = rows.map((row) => row.textContent.toLowerCase());
  const [text, status, suite, model] = ["text", "status", "suite", "model"].map(
    (name) => document.getElementById(`filter-${name}`));
  const count = document.getElementById("shown-count");
  function apply() {
    const needle = text.value.toLowerCase();
    const want = {status: status.value, suite: suite.value, model: model.value};
    let shown = 0;
    for (let i = 0; i < rows.length; i += 1) {
      const data = rows[i].dataset;
      const match = (!want.status || data.status === want.status)
        && (!want.suite || data.suite === want.suite)
        && (!want.model || data.model === want.model)
        && (!needle || texts[i].includes(needle));
      if (rows[i].hidden === match) rows[i].hidden = !match;
      if (match) shown += 1;
    }
    count.textContent = `${shown} of ${rows.length} items shown`;
  }
  for (const control of [text, status, suite, model]) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  }
  apply();
})();
"""


def _source_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


# Only the page's own style and script may run, and nothing may be fetched.
CSP = f"default-src 'none'; base-uri 'none'; style-src {_source_hash(CSS)}; script-src {_source_hash(SCRIPT)}"


@dataclass(frozen=True)
class _Results:
    """summary.json's results, with the suite and model orders every table shares."""

    rows: list[Record]
    suites: list[str]
    models: list[str]

    def get(self, suite: str, model: str) -> Record | None:
        found = [r for r in self.rows if (r.get("suite"), r.get("model")) == (suite, model)]
        return found[0] if found else None

    def of_suite(self, suite: str) -> list[Record]:
        return [r for r in self.rows if r.get("suite") == suite]

    def metric_names(self, suite: str) -> list[str]:
        return _unique(name for r in self.of_suite(suite) for name in _dig(r, "metrics"))

    def cell(self, suite: str, model: str, *path: str) -> str:
        """The estimate at `path` in one result; a dash where the pair did not run."""
        found = self.get(suite, model)
        return "—" if found is None else _estimate(_dig(found, *path))


def render_html(document: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> str:
    """The complete report.html for a parsed summary.json and the items.jsonl records."""
    run, manifest = _mapping(document.get("run")), _mapping(document.get("manifest"))
    rows = _records(document.get("results"))
    seen = _unique(r.get("model") for r in rows)
    declared = [m for m in _mapping(manifest.get("models")) if m in seen]
    models = declared + sorted(set(seen) - set(declared))
    results = _Results(rows, sorted(_unique(r.get("suite") for r in rows)), models)
    body = [
        _run_section(run, manifest),
        _gates_section(document, run, rows),
        _not_evaluated_section(run),
        _metrics_section(results),
        _charts_section(results),
        _breakdowns_section(results),
        _comparison_section(document.get("comparison")),
        _items_section(_records(items), results),
    ]
    title = _esc(f"vnllmtest run {_text(run.get('id'))}".strip())
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n{''.join(body)}<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _run_section(run: Record, manifest: Record) -> str:
    rows = [f"<tr><th>{k}</th><td>{_esc(run.get(v))}</td></tr>" for k, v in RUN_FACTS]
    content = [f"<table>{''.join(rows)}</table>"]
    if run.get("complete") is False:
        content.insert(0, INCOMPLETE)
    suites = sorted(_mapping(manifest.get("suites")).items())
    data = [_data_entry(name, _mapping(suite)) for name, suite in suites]
    if data:
        content.append(f"<p>Data:</p><ul>{''.join(data)}</ul>")
    return _section("run", "Run", "".join(content))


def _data_entry(name: str, suite: Record) -> str:
    notes = "".join(f"<br>note: {_esc(note)}" for note in suite.get("data_notes") or [])
    return f"<li><code>{_esc(name)}</code>: {_esc(suite.get('data_origin'))}{notes}</li>"


GATE_CSS = {"pass": "pass", "FAIL": "fail", "skipped": "skipped", "not evaluated": "not-evaluated"}


def _gates_section(document: Record, run: Record, results: list[Record]) -> str:
    require_gates = bool(run.get("require_gates"))
    gates = [gate for r in results for gate in _records(r.get("gates"))]
    outcomes = [(gate, *gate_outcome(_gate_state(gate), _text(gate.get("reason")), require_gates)) for gate in gates]
    outcomes.sort(key=lambda found: found[1] != "FAIL")
    rows = []
    for gate, word, why in outcomes:
        shown = "<strong>FAIL</strong>" if word == "FAIL" else word
        verdict = f"{shown} {_esc(why)}".strip()
        value = _number_text(gate.get("value"), 1)
        cells = [*_cells(gate, "suite model gate"), value, _esc(gate.get("detail")), verdict]
        rows.append(_tr(cells, GATE_CSS[word]))
    table = _table("Dataset|Model|Gate|Checked value|Estimate|Result", rows)
    return _section("gates", "Gates", _gates_banner(document) + table)


def _gate_state(gate: Record) -> str:
    """The gate's state; summary.json files written before gates had one say `skipped` and `passed`."""
    if "state" in gate:
        return _text(gate.get("state"))
    return "skipped" if gate.get("skipped") else "passed" if gate.get("passed") else "failed"


def _gates_banner(document: Record) -> str:
    """The run's verdict, as summary.json records it (computed once, for every output)."""
    headline, passed = document.get("gates_verdict"), document.get("gates_passed")
    if not isinstance(headline, str) or not isinstance(passed, bool):
        return '<p class="banner bad" id="gates-failed">No verdict recorded in summary.json.</p>'
    if not passed:
        return f'<p class="banner bad" id="gates-failed">{_esc(headline)}</p>'
    css = "ok" if document.get("gates_evaluated") is True else "warn"
    return f'<p class="banner {css}" id="gates-verdict">{_esc(headline)}</p>'


def _not_evaluated_section(run: Record) -> str:
    errors = _records(run.get("collection_errors"))
    if not errors:
        return ""
    entries = "".join(f"<li><code>{_esc(e.get('path'))}</code><pre>{_esc(e.get('error'))}</pre></li>" for e in errors)
    intro = "<p>These suites could not be collected, so none of their gates passed:</p>"
    return _section("not-evaluated", "Not evaluated", f"{intro}<ul>{entries}</ul>")


def _metrics_section(results: _Results) -> str:
    rows = []
    for suite in results.suites:
        for metric in results.metric_names(suite):
            cells = [results.cell(suite, m, "metrics", metric) + _unscored(results.get(suite, m), metric) for m in results.models]
            rows.append(_tr([_esc(suite), _esc(metric), *cells]))
    table = _table(["Dataset", "Metric", *results.models], rows)
    return _section("metrics", "Metrics", SCALE_NOTE + table + _definitions(results))


def _definitions(results: _Results) -> str:
    """What each metric computes, with its definition version."""
    names = sorted({name for suite in results.suites for name in results.metric_names(suite)})
    known = [(name, metric_info(name)) for name in names if is_known_metric(name)]
    entries = "".join(f"<li><code>{_esc(name)}</code> (v{info.version}): {_esc(info.summary)}</li>" for name, info in known)
    return f'<ul class="definitions">{entries}</ul>' if entries else ""


def _unscored(result: Record | None, metric: str) -> str:
    """How many items had no value for the metric, after its estimate, when any."""
    count = _number(_dig(result, "unscored").get(metric))
    return f" ({count:g} unscored)" if count else ""


def _charts_section(results: _Results) -> str:
    figures = []
    for suite in results.suites:
        panels, top = [], 0
        for metric in results.metric_names(suite):
            bars = [
                (model, _dig(found, "metrics", metric))
                for model in results.models
                if (found := results.get(suite, model)) is not None
            ]
            panels.append(_panel(metric, bars, results.models, top))
            top += TITLE + len(bars) * STEP + AXIS
        size = f'viewBox="0 0 {WIDTH} {top}" width="{WIDTH}" height="{top}"'
        svg = f'<svg class="chart" {size} role="img">{"".join(panels)}</svg>'
        figures.append(f"<figure><figcaption>{_esc(suite)}</figcaption>{svg}</figure>")
    return _section("charts", "Charts", "".join(figures)) if figures else ""


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
    value, low, high = (_number(found.get(key)) for key in ("value", "low", "high"))
    label = model if len(model) <= 26 else model[:25] + "…"
    parts = [
        f"<title>{_esc(model)} {_esc(metric)}: {_estimate(found)}</title>",
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
        pairs.append(f'{name.rstrip("_").replace("_", "-")}="{_esc(value)}"')
    opening = f"<{tag} {' '.join(pairs)}"
    return f"{opening}/>" if text is None else f"{opening}>{_esc(text)}</{tag}>"


def _axis(metric: str, bars: list[tuple[str, Record]]) -> tuple[float, float]:
    """0-100 for points; the rubric's 1-10 for judge scores, wider if an interval is."""
    if not metric.startswith("judge_"):
        return 0.0, 100.0
    return 1.0, max([10.0, *(_number(found.get("high")) or 0.0 for _, found in bars)])


def _ticks(lo: float, hi: float) -> list[float]:
    step = 25.0 if lo == 0 else 3.0
    ticks = [lo + step * k for k in range(int((hi - lo) // step) + 1)]
    return ticks if ticks[-1] == hi else [*ticks, hi]


def _x(value: float, scale: tuple[float, float]) -> float:
    lo, hi = scale
    return PLOT_X0 + (min(max(value, lo), hi) - lo) / (hi - lo) * (PLOT_X1 - PLOT_X0)


def _breakdowns_section(results: _Results) -> str:
    rows = []
    for suite in results.suites:
        for tag, value, metric in _breakdown_keys(results.of_suite(suite)):
            path = ("breakdowns", tag, value, metric)
            cells = [results.cell(suite, model, *path) for model in results.models]
            name = f"{_esc(tag)}={_esc(value)}"
            rows.append(_tr([_esc(suite), name, _esc(metric), *cells]))
    if not rows:
        return ""
    table = _table(["Dataset", "Breakdown", "Metric", *results.models], rows)
    return _section("breakdowns", "Breakdowns", table)


def _breakdown_keys(group: list[Record]) -> Iterator[tuple[str, str, str]]:
    """(tag, value, metric) over one suite's results, for tags with few values."""
    for tag in _unique(tag for r in group for tag in _dig(r, "breakdowns")):
        values = _unique(value for r in group for value in _dig(r, "breakdowns", tag))
        if len(values) > MAX_BREAKDOWN_VALUES:
            continue
        for value in values:
            metrics = (m for r in group for m in _dig(r, "breakdowns", tag, value))
            yield from ((tag, value, metric) for metric in _unique(metrics))


def _comparison_section(comparison: Any) -> str:
    if not isinstance(comparison, Mapping):
        return ""
    baseline = _mapping(comparison.get("baseline"))
    run_id, path = _esc(baseline.get("run_id")), _esc(baseline.get("path"))
    content = [
        f"<p>Baseline run <code>{run_id}</code> at <code>{path}</code>.</p>",
        _differences(_records(comparison.get("metrics"))),
        _coverage(_records(comparison.get("coverage"))),
        _flips(_records(comparison.get("flips"))),
    ]
    return _section("comparison", "Comparison with the baseline", "".join(content))


def _differences(entries: list[Record]) -> str:
    rows = []
    for entry in entries:
        difference = _mapping(entry.get("difference"))
        low, high = _number(difference.get("low")), _number(difference.get("high"))
        worse, better = high is not None and high < 0, low is not None and low > 0
        css = "worse" if worse else "better" if better else ""
        cells = _cells(entry, "suite model baseline_model metric shared")
        cells += [_estimate(entry.get("current")), _estimate(entry.get("baseline"))]
        cells.append(f'<span class="{css}">{_estimate(difference)}</span>')
        cells += [_number_text(entry.get("p_value"), 3), _esc(entry.get("test"))]
        rows.append(_tr(cells))
    header = "Dataset|Model|Baseline model|Metric|Shared|Current|Baseline|Difference|p|Test"
    return "<h3>Paired differences</h3>" + _table(header, rows)


def _coverage(entries: list[Record]) -> str:
    rows = []
    for entry in entries:
        ids = [_ids(entry.get("only_current")), _ids(entry.get("only_baseline"))]
        rows.append(_tr([*_cells(entry, "suite model baseline_model shared"), *ids]))
    header = "Dataset|Model|Baseline model|Shared|Only in this run|Only in the baseline"
    return "<h3>Coverage</h3>" + _table(header, rows)


def _ids(ids: Any) -> str:
    ids = [i for i in ids or [] if i is not None]
    return f"{len(ids)}: {', '.join(_esc(i) for i in ids)}" if ids else "0"


def _flips(flips: list[Record]) -> str:
    rows = []
    for flip in sorted(flips, key=lambda f: f.get("direction") != "regression"):
        now, before = _dig(flip, "metrics"), _dig(flip, "baseline_metrics")
        changes = "<br>".join(
            f"{_esc(name)} {_number_text(before.get(name), 3)} → {_number_text(now.get(name), 3)}"
            for name in _unique([*before, *now])
        )
        keys = "suite model baseline_model id direction baseline_status status"
        direction = flip.get("direction")
        css = direction if direction in ("regression", "fix") else ""
        rows.append(_tr([*_cells(flip, keys), changes, _esc(flip.get("nodeid"))], css))
    header = "Dataset|Model|Baseline model|Id|Direction|Baseline status|Status|Metrics|Node id"
    return f"<h3>Flipped items ({len(rows)})</h3>" + _table(header, rows, "flips")


def _items_section(records: list[Record], results: _Results) -> str:
    suites = _unique([*results.suites, *sorted(_unique(r.get("suite") for r in records))])
    models = _unique([*results.models, *sorted(_unique(r.get("model") for r in records))])
    controls = [
        TEXT_FILTER,
        _select("filter-status", "Status", "all", STATUSES),
        _select("filter-suite", "Suite", "all suites", suites),
        _select("filter-model", "Model", "all models", models),
        f'<span id="shown-count">{len(records)} of {len(records)} items shown</span>',
    ]
    header = "Suite|Model|Id|Status|Failure class|Metrics|Judge|Details"
    table = _table(header, [_item_row(r) for r in records], "items")
    return _section("items", "Items", f'<div class="filters">{"".join(controls)}</div>{table}')


def _select(element_id: str, label: str, everything: str, values: Iterable[str]) -> str:
    options = "".join(f'<option value="{_esc(v)}">{_esc(v)}</option>' for v in values)
    return f'<select id="{element_id}" aria-label="{label}"><option value="">{everything}</option>{options}</select>'


def _item_row(item: Record) -> str:
    status, judges = _text(item.get("status")), _records(item.get("judges"))
    css = f"status-{status}" if status in STATUSES else ""
    metrics = _dig(item, "metrics").items()
    cells = [
        *_cells(item, "suite model id"),
        f'<span class="{css}">{_esc(status)}</span>',
    ]
    cells.append(_esc(item.get("failure_class")))
    cells.append("<br>".join(f"{_esc(k)} {_number_text(v, 3)}" for k, v in metrics))
    cells.append(" / ".join(_number_text(_headline_score(judge), 2) for judge in judges))
    cells.append(_item_details(item, judges))
    suite, model = _esc(item.get("suite")), _esc(item.get("model"))
    data = f' data-status="{_esc(status)}" data-suite="{suite}" data-model="{model}"'
    return _tr(cells, "item-row", data)


def _item_details(item: Record, judges: list[Record]) -> str:
    references = item.get("references") or []
    references = [references] if isinstance(references, str) else references
    fields = [_field("Prompt", item.get("prompt"))]
    fields += [_field(f"Reference {n}", r) for n, r in enumerate(references, 1)]
    fields += [_field(label, item.get(key)) for label, key in DETAIL_FIELDS]
    fields += [_judge_field(judge) for judge in judges]
    fields.append(_field("Origin", item.get("origin")))
    return f"<details><summary>show</summary>{''.join(fields)}</details>"


def _judge_field(judge: Record) -> str:
    scores = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in _dig(judge, "scores").items())
    failed = " (judge failed)" if judge.get("judge_failed") else ""
    scored = "score" if judge.get("holistic") is not None else "overall"
    head = f"<strong>{_esc(judge.get('judge'))}: {scored} {_number_text(_headline_score(judge), 2)}{failed}</strong>"
    rationale = judge.get("rationale")
    shown = f"<pre>{_esc(clip(_text(rationale), SHOWN_CHARS))}</pre>" if rationale else ""
    body = (f"<br>{scores}" if scores else "") + shown
    return f"<div>{head}{body}</div>"


def _headline_score(judge: Record) -> Any:
    """The judge's holistic score where its rubric asks for one, else the criteria's mean."""
    return judge.get("holistic") if judge.get("holistic") is not None else judge.get("overall")


def _field(label: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    return f"<div><strong>{label}</strong><pre>{_esc(clip(_text(value), SHOWN_CHARS))}</pre></div>"


def _section(element_id: str, title: str, content: str) -> str:
    return f'<section id="{element_id}"><h2>{title}</h2>{content}</section>\n'


def _table(header: str | Sequence[str], rows: Sequence[str], css: str = "") -> str:
    """A table; `header` is escaped, a string header is split at `|`, rows are HTML."""
    names = header.split("|") if isinstance(header, str) else header
    head = "".join(f"<th>{_esc(name)}</th>" for name in names)
    body = "\n".join(rows) or f'<tr><td colspan="{len(names)}">none</td></tr>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _tr(cells: Iterable[str], css: str = "", attributes: str = "") -> str:
    """A row of cells that are already HTML."""
    tds = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr class="{css}"{attributes}>{tds}</tr>'


def _cells(record: Record, keys: str) -> list[str]:
    return [_esc(record.get(key)) for key in keys.split()]


def _estimate(found: Any) -> str:
    """`value [low, high]` with one decimal; `n/a` without a value."""
    value, low, high = (_number(_mapping(found).get(k)) for k in ("value", "low", "high"))
    if value is None:
        return "n/a"
    interval = "" if low is None or high is None else f" [{low:.1f}, {high:.1f}]"
    return f"{value:.1f}{interval}"


def _number_text(value: Any, digits: int) -> str:
    number = _number(value)
    if number is not None:
        return f"{number:.{digits}f}"
    return "n/a" if value is None else _esc(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _dig(mapping: Any, *path: str) -> Record:
    """The mapping at `path`, or an empty one where any step is missing."""
    for key in path:
        mapping = _mapping(mapping).get(key)
    return _mapping(mapping)


def _mapping(value: Any) -> Record:
    return value if isinstance(value, Mapping) else {}


def _records(value: Any) -> list[Record]:
    return [entry for entry in value or [] if isinstance(entry, Mapping)]


def _unique(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(_text(v) for v in values if v is not None))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _esc(value: Any) -> str:
    return escape(_text(value), quote=True)
