"""Lenient readers for report.html's inputs: summary.json and items.jsonl values of any shape, read
as mappings, lists of records, numbers and text, never raising on a missing or odd value."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

Record = Mapping[str, Any]


def as_number(value: Any) -> float | None:
    """The value as a float; None for booleans, NaN and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def dig(mapping: Any, *path: str) -> Record:
    """The mapping at `path`, or an empty one where any step is missing."""
    for key in path:
        mapping = as_mapping(mapping).get(key)
    return as_mapping(mapping)


def as_mapping(value: Any) -> Record:
    return value if isinstance(value, Mapping) else {}


def as_records(value: Any) -> list[Record]:
    return [entry for entry in value or [] if isinstance(entry, Mapping)]


def unique(values: Iterable[Any]) -> list[str]:
    """The values as text, in first-seen order, each once; None left out."""
    return list(dict.fromkeys(as_text(v) for v in values if v is not None))


def as_text(value: Any) -> str:
    return "" if value is None else str(value)
