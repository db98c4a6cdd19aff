"""The JSON objects in a judge's reply, read leniently: fenced or not, with trailing commas, in
Python's quoting, or broken (cut short, placeholders, missing commas), when they are tokenised into
their `"key": value` pairs, each string read whole so that no number inside one is taken for a value."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_STRING = re.compile(r'"(?P<body>(?:[^"\\]|\\.)*)(?P<close>"?)', re.S)
_COLON = re.compile(r"\s*:\s*")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


class Pairs(list):
    """A JSON object as its (key, value) pairs, so that a key given twice is seen twice."""


@dataclass(frozen=True)
class FlatPair:
    """One `"key": value` of a broken object: where the key starts, where its value starts, and the
    value's text when it is a string (`closed` False when the reply ends inside it)."""

    pos: int
    key: str
    value_pos: int
    string: str | None = None
    closed: bool = True


@dataclass(frozen=True)
class JsonObject:
    """A top-level `{...}` of the reply (up to the reply's end when never closed): parsed, or, when
    broken, its pairs."""

    start: int
    end: int
    value: Pairs | None
    pairs: tuple[FlatPair, ...] = ()


def json_objects(text: str) -> Iterator[JsonObject]:
    """Every top-level object of the text that parses or has at least one `"key": value` pair."""
    start = text.find("{")
    while start != -1:
        end = _closing(text, start)
        value = _load(text[start:end])
        if isinstance(value, Pairs):
            yield JsonObject(start, end, value)
        else:
            pairs = tuple(_flat_pairs(text, start, end))
            if pairs:
                yield JsonObject(start, end, None, pairs)
        start = text.find("{", end)


def _closing(text: str, start: int) -> int:
    """The end of the object opening at `start` (braces in strings skipped), or of the text."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return index + 1
    return len(text)


def _load(region: str) -> Any:
    for candidate in (region, _TRAILING_COMMA.sub(r"\1", region)):
        try:
            return json.loads(candidate, object_pairs_hook=Pairs)
        except (ValueError, RecursionError):
            continue
    try:
        return _as_pairs(ast.literal_eval(region))  # a Python-style dict with single quotes
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return None


def _as_pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs((key, _as_pairs(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return [_as_pairs(item) for item in value]
    return value


def _flat_pairs(text: str, start: int, end: int) -> Iterator[FlatPair]:
    position = start
    while (quote := text.find('"', position, end)) != -1:
        key = _STRING.match(text, quote, end)
        position = key.end()
        colon = _COLON.match(text, position, end)
        if not key.group("close") or not colon:
            continue  # a string that is no key: skipped whole
        position = colon.end()
        if not text.startswith('"', position):
            yield FlatPair(quote, _unescape(key.group("body")), position)
            continue
        value = _STRING.match(text, position, end)
        string, closed = _unescape(value.group("body")), bool(value.group("close"))
        yield FlatPair(quote, _unescape(key.group("body")), position, string, closed)
        position = value.end()


def _unescape(body: str) -> str:
    try:
        return json.loads(f'"{body}"')
    except ValueError:
        return body
