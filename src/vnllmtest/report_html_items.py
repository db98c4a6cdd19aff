"""report.html's items: a table to filter and sort (`report_html_script`), one row an item, with its prompt,
references, output and judge verdicts behind a `show` toggle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vnllmtest.clipping import clip
from vnllmtest.outcomes import STATUSES
from vnllmtest.report_html_data import Record, as_records, as_text, dig, unique
from vnllmtest.report_html_parts import Results, esc, escaped_cells, html_row, html_table, number_text, section

SHOWN_CHARS = 20_000  # the most of one text (prompt, output, thinking) an item's details show
TEXT_FILTER = (
    '<input id="filter-text" type="search" placeholder="Filter: id, prompt, output…" aria-label="Filter items by text">'
)
# The item table's sortable columns and how each compares (the judge column by its first judge's score).
SORTED_BY = dict.fromkeys(("Suite", "Model", "Id", "Status", "Failure class", "Metrics"), "text") | {"Judge": "number"}
DETAIL_FIELDS = (("Output", "output"), ("Extracted answer", "answer"), ("Thinking", "thinking"), ("Message", "message"))


def items_section(records: list[Record], results: Results) -> str:
    suites = unique([*results.suites, *sorted(unique(r.get("suite") for r in records))])
    models = unique([*results.models, *sorted(unique(r.get("model") for r in records))])
    controls = [
        TEXT_FILTER,
        _select("filter-status", "Status", "all", STATUSES),
        _select("filter-suite", "Suite", "all suites", suites),
        _select("filter-model", "Model", "all models", models),
        f'<span id="shown-count">{len(records)} of {len(records)} items shown</span>',
    ]
    header = "Suite|Model|Id|Status|Failure class|Metrics|Judge|Details"
    table = html_table(header, [_item_row(r) for r in records], "items", SORTED_BY)
    return section("items", "Items", f'<div class="filters">{"".join(controls)}</div>{table}')


def _select(element_id: str, label: str, everything: str, values: Iterable[str]) -> str:
    options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    return f'<select id="{element_id}" aria-label="{label}"><option value="">{everything}</option>{options}</select>'


def _item_row(item: Record) -> str:
    status, judges = as_text(item.get("status")), as_records(item.get("judges"))
    css = f"status-{status}" if status in STATUSES else ""
    metrics = dig(item, "metrics").items()
    cells = [
        *escaped_cells(item, "suite model id"),
        f'<span class="{css}">{esc(status)}</span>',
    ]
    cells.append(esc(item.get("failure_class")))
    cells.append("<br>".join(f"{esc(k)} {number_text(v, 3)}" for k, v in metrics))
    cells.append(" / ".join(number_text(_headline_score(judge), 2) for judge in judges))
    cells.append(_item_details(item, judges))
    suite, model = esc(item.get("suite")), esc(item.get("model"))
    data = f' data-status="{esc(status)}" data-suite="{suite}" data-model="{model}"'
    return html_row(cells, "item-row", data)


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
    scores = ", ".join(f"{esc(k)} {esc(v)}" for k, v in dig(judge, "scores").items())
    failed = " (judge failed)" if judge.get("judge_failed") else ""
    scored = "score" if judge.get("holistic") is not None else "overall"
    head = f"<strong>{esc(judge.get('judge'))}: {scored} {number_text(_headline_score(judge), 2)}{failed}</strong>"
    rationale = judge.get("rationale")
    shown = f"<pre>{esc(clip(as_text(rationale), SHOWN_CHARS))}</pre>" if rationale else ""
    body = (f"<br>{scores}" if scores else "") + shown
    return f"<div>{head}{body}</div>"


def _headline_score(judge: Record) -> Any:
    """The judge's holistic score where its rubric asks for one, else the criteria's mean."""
    return judge.get("holistic") if judge.get("holistic") is not None else judge.get("overall")


def _field(label: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    return f"<div><strong>{label}</strong><pre>{esc(clip(as_text(value), SHOWN_CHARS))}</pre></div>"
