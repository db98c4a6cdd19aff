"""Reading one score from a judge reply's text: folding (case, diacritics), the labels a rubric's
scores go by, and a number that is written as a score. Every reader of replies (JSON, tables, lines)
builds on ReplyText."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from vnllmtest.rubrics import JudgeParseError, Rubric

# Names judges give the one headline score (the holistic score, or a lone criterion), diacritics folded.
HEADLINE_ALIASES = (
    "score", "diem", "diem so", "diem tong the", "diem chung", "diem tong quat", "overall", "overall score",
    "final score", "holistic score", "diem cuoi cung",
)
RATIONALE_KEYS = {
    "ly do", "lydo", "rationale", "reason", "reasoning", "giai thich", "nhan xet", "explanation", "comment",
    "binh luan", "justification",
}

_VALUE = re.compile(
    r"[*_`\"']*(?P<num>\d{1,3}(?:[.,]\d{1,2})?)(?![.,]?\d)[*_`\"']*"
    r"(?:[ \t]*/[ \t]*[*_]*(?P<slash>\d{1,4})(?!\d)[*_]*"
    r"|[ \t]+(?:tren|out of)[ \t]+(?:thang[ \t]+(?:diem[ \t]+)?)?(?P<over>\d{1,4})(?!\d)"
    r"|[ \t]*(?P<pct>%))?"
    r"(?:[ \t]*(?:diem|points?|pts)(?![^\W_]))?[*_`\"']*"
)
_RANGE = re.compile(r"[ \t]*(?:[-–—~]|den|to)[ \t]*\d")
_ALTERNATIVE = re.compile(r"[ \t]*,?[ \t]*(?:hoac|hay|or)[ \t]+[*_`\"']*\d")  # "7/10 hoặc 8/10": a hedge
_FOLLOW = re.compile(r"[ \t]*(?:\n|$|[^\w\s]|_)")  # a line end or any symbol: punctuation, brackets, emoji
_REASON = re.compile(r"[ \t]+(?:vì|bởi|do|because|since|as|nhưng|but|tuy|mặc dù|although|though)(?![^\W_])", re.I)
_NUMBER_START = re.compile(r"(?<![\d.,/])\d")  # not inside a number, nor a scale's "/10"


@dataclass(frozen=True)
class Entry:
    """One score read from a reply: where it stands, the score's name and its value."""

    pos: int
    key: str
    value: float
    backward: bool = False  # read as "8 - label", which an enumerated list also looks like
    end: int = -1  # where a labelled line's score (or "8 - label") ends; -1: at `pos`


def fold(text: str) -> str:
    """Lowercase, diacritics off, `_` as a space, one character for one: `Độ_chính` -> `do chinh`."""
    return "".join(map(_fold_char, text))


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char in "đĐ":
        return "d"
    if char == "_":
        return " "
    base = unicodedata.normalize("NFD", char)[0].lower()
    return base if len(base) == 1 else char


def words(text: str) -> str:
    """The folded words of a text, one space apart: `**Độ chính xác**:` -> `do chinh xac`."""
    return " ".join(re.findall(r"[^\W_]+", fold(text)))


@dataclass(frozen=True)
class Keys:
    """The labels of a rubric's scores, and a pattern that finds them in folded text."""

    exact: dict[str, str]  # folded label -> score name
    pattern: re.Pattern[str]


@lru_cache(maxsize=64)
def score_keys(rubric: Rubric) -> Keys:
    """Every score's name, label and aliases, with the headline aliases for the holistic (or lone) score."""
    exact: dict[str, str] = {}
    for criterion in rubric.scored:
        for alias in (criterion.name, criterion.label, *criterion.aliases):
            exact[words(alias)] = criterion.name
    headline = rubric.holistic or (rubric.criteria[0] if len(rubric.criteria) == 1 else None)
    for alias in HEADLINE_ALIASES if headline else ():
        exact.setdefault(alias, headline.name)
    ordered = sorted(exact, key=len, reverse=True)
    alternatives = "|".join(r"[ \t]+".join(map(re.escape, alias.split())) for alias in ordered)
    return Keys(exact, re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])"))


def label_key(label: str, keys: Keys) -> str | None:
    """The score a whole label names (a JSON key, a table cell): decoration, numbering, a gloss in
    brackets and a trailing `score`/`điểm` are ignored."""
    folded = re.sub(r"\([^)]*\)", " ", fold(label))
    folded = words(re.sub(r"^\W*\d{1,2}[.)]", " ", folded))
    for candidate in (folded, re.sub(r" (?:score|diem)$", "", folded)):
        if candidate in keys.exact:
            return keys.exact[candidate]
    return None


class ReplyText:
    """A judge reply ready for reading: its text (NFC), the folded `view` numbers are read from (masked
    by a reader as it goes), and the rubric that names and bounds the scores. `cut`: the reply was cut
    by its token budget."""

    def __init__(self, text: str, rubric: Rubric, cut: bool = False):
        self.text, self.rubric, self.cut = text, rubric, cut
        self.keys = score_keys(rubric)
        self.view = fold(text)

    def score_at(self, pos: int, key: str, end: int | None = None) -> tuple[float, int] | None:
        """The score starting at `pos` (value, end), None where the number there is not a score."""
        end = len(self.text) if end is None else end
        match = _VALUE.match(self.view, pos, end)
        if not match or _RANGE.match(self.view, match.end("num"), end):
            return None
        if any(_ALTERNATIVE.match(self.view, at, end) for at in (match.end("num"), match.end())):
            return None
        after = match.end()
        if after == len(self.text) and self.cut:
            return None  # the budget may have cut this number short
        scale = match.group("slash") or match.group("over")
        follows = bool(_FOLLOW.match(self.view, after, end) or _REASON.match(self.text, after, end))
        if scale is not None and int(scale) == self.rubric.high:
            follows = True  # "8/10 rất tốt": the scale makes it a score
        if not follows:
            return None
        if match.group("pct"):
            scale = "100"
        return checked(match.group("num"), scale, self.rubric, key), after

    def score_in(self, text: str, key: str) -> tuple[float, int] | None:
        """The score a short text (a JSON string, a table cell) starts with."""
        return ReplyText(text.strip(), self.rubric).score_at(0, key)

    def written_scores(self, start: int, end: int) -> Iterator[float]:
        """The numbers in view[start:end] shaped like a score: with a scale ("8/10", "60%"), or in the
        rubric's range with a symbol or the line's end after them."""
        for number in _NUMBER_START.finditer(self.view, start, end):
            value = _VALUE.match(self.view, number.start(), end)
            if value is None:
                continue
            read = float(value.group("num").replace(",", "."))
            scaled = value.group("slash") or value.group("over") or value.group("pct")
            in_range = self.rubric.low <= read <= self.rubric.high
            if scaled or (in_range and _FOLLOW.match(self.view, value.end(), end)):
                yield read


def checked(number: str | float, scale: str | None, rubric: Rubric, key: str) -> float:
    """The score as a number, when on the rubric's scale and in its range; JudgeParseError otherwise."""
    value = float(number.replace(",", ".")) if isinstance(number, str) else number
    if scale is not None and int(scale) != rubric.high:
        raise JudgeParseError(f"'{key}': scored {number}/{scale}, but the scale is {rubric.low}-{rubric.high}")
    if not rubric.low <= value <= rubric.high:
        raise JudgeParseError(f"'{key}': score {number} is outside {rubric.low}-{rubric.high}")
    return float(value)
