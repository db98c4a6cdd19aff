"""What every section of report.html is built from: summary.json's results in the order every table
shares, and escaped HTML sections, tables, rows, numbers and estimates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from vnllmtest.report_html_data import Record, as_mapping, as_number, as_text, dig, unique


@dataclass(frozen=True)
class Results:
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
        return unique(name for r in self.of_suite(suite) for name in dig(r, "metrics"))

    def cell(self, suite: str, model: str, *path: str) -> str:
        """The estimate at `path` in one result; a dash where the pair did not run."""
        found = self.get(suite, model)
        return "—" if found is None else estimate(dig(found, *path))


def section(element_id: str, title: str, content: str) -> str:
    return f'<section id="{element_id}"><h2>{title}</h2>{content}</section>\n'


def html_table(
    header: str | Sequence[str], rows: Sequence[str], css: str = "", sortable: Mapping[str, str] | None = None
) -> str:
    """A table; `header` is escaped, a string header is split at `|`, rows are HTML. The columns named in
    `sortable` get a sort button and `data-sort` with their comparison ("text" or "number")."""
    names = header.split("|") if isinstance(header, str) else header
    head = "".join(_header_cell(name, (sortable or {}).get(name)) for name in names)
    body = "\n".join(rows) or f'<tr><td colspan="{len(names)}">none</td></tr>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _header_cell(name: str, comparison: str | None) -> str:
    if comparison is None:
        return f"<th>{esc(name)}</th>"
    return f'<th data-sort="{comparison}"><button type="button" class="sort">{esc(name)}</button></th>'


def html_row(cells: Iterable[str], css: str = "", attributes: str = "") -> str:
    """A row of cells that are already HTML."""
    tds = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr class="{css}"{attributes}>{tds}</tr>'


def escaped_cells(record: Record, keys: str) -> list[str]:
    """The record's values at the space-separated `keys`, escaped."""
    return [esc(record.get(key)) for key in keys.split()]


def estimate(found: Any) -> str:
    """`value [low, high]` with one decimal; `n/a` without a value."""
    value, low, high = (as_number(as_mapping(found).get(k)) for k in ("value", "low", "high"))
    if value is None:
        return "n/a"
    interval = "" if low is None or high is None else f" [{low:.1f}, {high:.1f}]"
    return f"{value:.1f}{interval}"


def svg(tag: str, text: str | None = None, **attributes: Any) -> str:
    """An SVG element; `class_` names `class`, `x_y` names `x-y`; all escaped."""
    pairs = []
    for name, value in attributes.items():
        value = f"{value:.1f}" if isinstance(value, float) else value
        pairs.append(f'{name.rstrip("_").replace("_", "-")}="{esc(value)}"')
    opening = f"<{tag} {' '.join(pairs)}"
    return f"{opening}/>" if text is None else f"{opening}>{esc(text)}</{tag}>"


def number_text(value: Any, digits: int) -> str:
    number = as_number(value)
    if number is not None:
        return f"{number:.{digits}f}"
    return "n/a" if value is None else esc(value)


def esc(value: Any) -> str:
    return escape(as_text(value), quote=True)
