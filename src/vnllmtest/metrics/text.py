"""Text normalisation shared by all Vietnamese metrics, and the abstention rule of SQuAD-2.0 scoring."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable

from vnllmtest.metrics.tones import canonical_tones

_ASCII_PUNCTUATION = frozenset(string.punctuation)
# An answer label a reply may repeat before its answer ("Trả lời: ...", "Đáp án: ..."), colon included.
_ANSWER_LABEL = re.compile(r"^\s*(?:câu\s+trả\s+lời|trả\s+lời|đáp\s+án)\s*:", re.IGNORECASE)


def is_punctuation(char: str) -> bool:
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def normalize_text(text: str) -> str:
    """NFC-normalise, lowercase, turn punctuation into spaces, collapse whitespace, and write each
    syllable's tone mark where the new placement rule puts it ("hòa" and "hoà" become one spelling).

    Diacritics are kept: "Hà Nội" and "Ha Noi" stay different, and so do "hòa" and "hóa".
    """
    lowered = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    spaced = "".join(" " if is_punctuation(char) else char for char in lowered)
    return " ".join(canonical_tones(token) for token in spaced.split())


def syllables(text: str) -> list[str]:
    """Split normalised text into Vietnamese syllables (whitespace tokens)."""
    return normalize_text(text).split()


def is_abstention(prediction: str, abstentions: Iterable[str] = ()) -> bool:
    """True when the prediction is empty or is, as a whole, one of the abstention phrases, after
    normalisation and an optional leading answer label ("Trả lời: Không có câu trả lời.").
    A phrase inside a longer reply does not count: "không có tiền" is an answer."""
    unlabelled = _ANSWER_LABEL.sub("", unicodedata.normalize("NFC", prediction), count=1)
    readings = {normalize_text(prediction), normalize_text(unlabelled)}
    return "" in readings or not readings.isdisjoint(normalize_text(phrase) for phrase in abstentions)
