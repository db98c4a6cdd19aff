"""Extract the option label a model chose from its free-text answer."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

# Not preceded / followed by a letter or digit (Unicode-aware; "_" counts as a boundary).
_NOT_AFTER_ALNUM = r"(?<![^\W_])"
_NOT_BEFORE_ALNUM = r"(?![^\W_])"

# "trả lời" also covers "câu trả lời", "chọn" covers "lựa chọn", "answer" + "is" covers
# "the answer is".
_CUES = ("đáp án", "trả lời", "phương án", "chọn", "answer")
_FILLER_WORDS = ("đúng", "là", "is")
# Separators, fillers and opening decorations allowed between a cue and its label.
_CUE_GAP_CHARS = r"[\s:\-–—(\[*\"'“‘«]"
# Opening decorations before a label at the very start, and what may follow that label.
_START_OPENERS = r"[\s(\[*]"
_START_CLOSERS = r"[\s.):\]*]"


def _alternation(words: Sequence[str]) -> str:
    """Regex alternation of the literal words, longest first."""
    return "|".join(map(re.escape, sorted(set(words), key=len, reverse=True)))


def _phrases(phrases: Sequence[str]) -> str:
    """Alternation of NFC phrases whose inner spaces match any run of whitespace."""
    nfc = [unicodedata.normalize("NFC", phrase) for phrase in phrases]
    return _alternation(nfc).replace(r"\ ", r"\s+")


_CUE_PREFIX = (
    rf"{_NOT_AFTER_ALNUM}(?:{_phrases(_CUES)})"
    rf"(?:{_CUE_GAP_CHARS}|{_NOT_AFTER_ALNUM}(?:{_phrases(_FILLER_WORDS)}){_NOT_BEFORE_ALNUM})*"
)


@lru_cache(maxsize=64)
def _patterns(keys: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Compile the (cue, start-of-text, marked) patterns for the given NFC labels."""
    labels = _alternation(keys)
    return (
        re.compile(
            rf"{_CUE_PREFIX}{_NOT_AFTER_ALNUM}(?P<label>{labels}){_NOT_BEFORE_ALNUM}", re.IGNORECASE
        ),
        re.compile(rf"\A{_START_OPENERS}*(?P<label>{labels})(?=\Z|{_START_CLOSERS})"),
        re.compile(rf"\(({labels})\)|\*\*({labels})\*\*"),
    )


def _resolve(matched: str, table: dict[str, str]) -> str:
    """Map a (possibly case-insensitive) match back to the caller's label."""
    if matched in table:
        return table[matched]
    return next(
        label
        for key, label in table.items()
        if re.fullmatch(re.escape(key), matched, re.IGNORECASE)
    )


def extract_choice(text: str, labels: Sequence[str]) -> str | None:
    """Return the label from `labels` that the answer text chose, or None.

    Precedence: the first explicit cue ("đáp án", "chọn", "answer", ...) followed by a label
    (any case); else a label opening the text ("B. ...", "(A) ...", "**C**"); else the only
    label written as "(X)" or "**X**" anywhere. Outside cues labels are case-sensitive and must
    stand alone, so capitals inside words such as "Cà phê" or "ĐÁP ÁN" never count.
    """
    table = {unicodedata.normalize("NFC", label): label for label in labels if label.strip()}
    if not table:
        return None
    text = unicodedata.normalize("NFC", text)
    cue, start, marked = _patterns(tuple(sorted(table)))

    for match in (cue.search(text), start.match(text)):
        if match:
            return _resolve(match.group("label"), table)
    marked_labels = {paren or bold for paren, bold in marked.findall(text)}
    return table[marked_labels.pop()] if len(marked_labels) == 1 else None
