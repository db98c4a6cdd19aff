"""What every dataset adapter produces: items to evaluate, or bad records that become item errors."""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class DataError(Exception):
    """A dataset that cannot be used at all; the message says where it looked and how to fix it."""


class RecordError(Exception):
    """One record that cannot be used: names the offending field."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"field '{field_name}': {problem}")


CLUSTER_LABEL_LIMIT = 64  # longer cluster values (a shared context paragraph) are labelled by a digest


@dataclass(frozen=True)
class RawRecord:
    """A record as read from its source, with where it came from (`file:line`, `file row N`...)."""

    origin: str
    data: Mapping[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class Item:
    """One thing to ask a model: template fields, gold references (empty = unanswerable), labels."""

    id: str
    fields: Mapping[str, Any]
    references: tuple[str, ...]
    labels: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""
    original_text: Mapping[str, Any] = field(default_factory=dict)  # source fields that NFC changed, as read

    def cluster(self, key: str) -> str | None:
        """The item's tag or field `key` as a cluster label (long values by a short digest); None if absent."""
        value = self.tags.get(key, self.fields.get(key))
        if value is None:
            return None
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        return text if len(text) <= CLUSTER_LABEL_LIMIT else "sha1:" + hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BadRecord:
    """A record that could not become an item; its test case reports `problem` as an error."""

    id: str
    origin: str
    problem: str
    tags: Mapping[str, str] = field(default_factory=dict)  # none: the record could not be read


def nfc(value: Any) -> Any:
    """NFC-normalise every string inside `value` (dicts and lists are walked)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, Mapping):
        return {key: nfc(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [nfc(inner) for inner in value]
    return value


def require_text(data: Mapping[str, Any], name: str, *, allow_empty: bool = False) -> str:
    """The string field `name`, NFC-normalised, or a RecordError saying what is wrong with it."""
    if name not in data or data[name] is None:
        raise RecordError(name, "missing")
    value = data[name]
    if not isinstance(value, str):
        raise RecordError(name, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(name, "empty")
    return nfc(value)


ID_LIMIT = 200  # characters: an id names a test case, a line of flipped.txt and a key of items.jsonl
_UNFIT = {"Cc", "Cs", "Zl", "Zp"}  # control characters, lone surrogates, line and paragraph separators


def record_id(data: Mapping[str, Any]) -> str:
    """The record's `id` field as text: a string or whole number, one printable line of at most ID_LIMIT
    characters (`pytest @file` reads one node id per line, so an id must not break a line). A float that
    is a whole number (`1.0`, as pandas writes an integer column holding a gap) is that integer's text."""
    value = data.get("id")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError("id", "missing")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise RecordError("id", f"expected text or a whole number, got the float {value!r}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError("id", f"expected text or a whole number, got {type(value).__name__}")
    text = nfc(value).strip() if isinstance(value, str) else str(value)
    if len(text) > ID_LIMIT:
        raise RecordError("id", f"{len(text)} characters; an id has at most {ID_LIMIT}")
    unfit = next((char for char in text if unicodedata.category(char) in _UNFIT), None)
    if unfit is not None:
        problem = f"holds the unprintable character U+{ord(unfit):04X}"
        raise RecordError("id", f"{problem}; an id names a test case and must be one printable line")
    return text


def usable_id(data: Mapping[str, Any] | None) -> str | None:
    """The record's id when `record_id` accepts it, else None."""
    try:
        return record_id(data) if data is not None else None
    except RecordError:
        return None
