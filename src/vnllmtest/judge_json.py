"""The JSON objects in a judge's reply, and the scores they give. Objects are read leniently: fenced
or not, with trailing commas, in Python's quoting, or broken (cut short, placeholders, missing commas),
when they are tokenised into their `"key": value` pairs, each string read whole so that no number
inside one is taken for a value. Scores come as keys named after criteria, nested under a key, or as
lists of {criterion, score} entries."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vnllmtest.judge_text import RATIONALE_KEYS, Entry, ReplyText, checked, label_key, words
from vnllmtest.rubrics import JudgeParseError

_STRING = re.compile(r'"(?P<body>(?:[^"\\]|\\.)*)(?P<close>"?)', re.S)
_COLON = re.compile(r"\s*:\s*")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_SCORE_FIELDS = {"score", "diem", "diem so", "value", "rating", "gia tri"}
_NAME_FIELDS = {"name", "criterion", "tieu chi", "ten", "key", "metric", "aspect", "khia canh"}


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


class ObjectScores:
    """The scores one JSON object of a reply gives, and its rationale (None where it gives none);
    JudgeParseError for a score off the rubric's scale."""

    def __init__(self, reply: ReplyText, found: JsonObject):
        self.reply = reply
        self.entries: list[Entry] = []
        self.rationale: str | None = None
        if found.value is not None:
            self._walk(found.value, found.start)
        for pair in found.pairs:
            self._flat(pair, found.end)

    def _walk(self, pairs: Pairs, pos: int) -> None:
        entry = self._named_entry(pairs)
        if entry is not None:
            self.entries.append(Entry(pos, *entry))
            return
        for key, value in pairs:
            name = label_key(str(key), self.reply.keys)
            if name is not None:
                self.entries.append(Entry(pos, name, self._score(value, name)))
            elif words(str(key)) in RATIONALE_KEYS and isinstance(value, str):
                self.rationale = value.strip()
            elif isinstance(value, Pairs):
                self._walk(value, pos)
            elif isinstance(value, list):
                for element in value:
                    if isinstance(element, Pairs):
                        self._walk(element, pos)

    def _named_entry(self, pairs: Pairs) -> tuple[str, float] | None:
        """`{"criterion": "Độ chính xác", "score": 8}`: one entry of a list of scores."""
        fields = {words(str(key)): value for key, value in pairs}
        names = [fields[k] for k in _NAME_FIELDS if isinstance(fields.get(k), str)]
        scores = [fields[k] for k in _SCORE_FIELDS if k in fields]
        name = label_key(names[0], self.reply.keys) if len(names) == 1 else None
        if name is None or len(scores) != 1:
            return None
        return name, self._score(scores[0], name)

    def _score(self, raw: Any, key: str) -> float:
        rubric = self.reply.rubric
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return checked(raw, None, rubric, key)
        if isinstance(raw, str):
            read = self.reply.score_in(raw, key)
            if read is not None:
                return read[0]
        if isinstance(raw, Pairs):
            inner = [value for field, value in raw if words(str(field)) in _SCORE_FIELDS]
            if len(inner) == 1:
                return self._score(inner[0], key)
        raise JudgeParseError(f"'{key}': expected a number from {rubric.low} to {rubric.high}, got {raw!r}")

    def _flat(self, pair: FlatPair, end: int) -> None:
        """One pair of a broken object: the rationale, or a score (a number, or a whole string such as "8/10")."""
        if pair.string is not None and words(pair.key) in RATIONALE_KEYS:
            self.rationale = pair.string.strip()
            return
        name = label_key(pair.key, self.reply.keys)
        if name is None or not pair.closed:
            return
        reply = self.reply
        read = reply.score_at(pair.value_pos, name, end) if pair.string is None else reply.score_in(pair.string, name)
        if read is not None:
            self.entries.append(Entry(pair.pos, name, read[0]))
