"""JSON text read as records: every way a parse can fail becomes a message naming the problem and field,
never an exception from the JSON reader (RecursionError, the integer digit limit) or a record that
would break later (a lone surrogate cannot be written to a report; a repeated key hides a value)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import Any

from vnllmtest.clipping import described

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a UTF-16 surrogate written as a JSON escape
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Repeated(dict):
    """A JSON object that named one key twice (JSON keeps the last value silently)."""

    key: str


def parse(raw: bytes) -> tuple[Any, str | None, bool]:
    """(value, None, suspect) or (None, problem, False). `suspect`: the value may hold a repeated key or
    a lone surrogate, so each record taken from it needs `flaw`."""
    repeated = False

    def pairs(items: list[tuple[str, Any]]) -> dict:
        nonlocal repeated
        value = dict(items)
        if len(value) == len(items):
            return value
        repeated, marked = True, _Repeated(value)
        marked.key = _first_repeat(key for key, _ in items)
        return marked

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}", False
    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        joint = " " if exc.msg.endswith(" at") else " at "  # "Unterminated string starting at column 5"
        return None, f"invalid JSON ({exc.msg}{joint}{where})", False
    except RecursionError:
        return None, "invalid JSON (nested more than Python's JSON reader allows)", False
    except ValueError:  # the only other: an integer over Python's digit limit
        return None, f"invalid JSON (a number of more than {sys.get_int_max_str_digits()} digits)", False
    return value, None, repeated or _SURROGATE_ESCAPE.search(raw) is not None


def parse_object(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """One JSON object (a JSONL line): (record, None), (record, problem) when `flaw` finds one (the
    record still names its id), or (None, problem)."""
    value, problem, suspect = parse(raw)
    if problem is None and not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, problem or (flaw(value) if suspect else None)


def flaw(record: dict[str, Any]) -> str | None:
    """What makes a parsed record unusable (a repeated key, a lone surrogate), naming its field; else None."""
    if isinstance(record, _Repeated):
        return f"field {described(record.key, 60)}: given twice"
    for key, value in record.items():
        problem = _flaw_in(key) or _flaw_in(value)
        if problem:
            return f"field {described(key, 60)}: {problem}"
    return None


def _flaw_in(value: Any) -> str | None:
    stack = [value]  # iterative: the value may be nested as deep as the JSON reader allows
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                return f"a lone UTF-16 surrogate (\\u{ord(found.group()):04x}) is not text"
        elif isinstance(item, _Repeated):
            return f"key {described(item.key, 60)} given twice"
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
    return None


def _first_repeat(keys: Iterable[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise ValueError("no key is repeated")

