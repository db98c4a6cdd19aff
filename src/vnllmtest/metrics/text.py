"""Text normalisation shared by all Vietnamese metrics."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable

_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _is_punctuation(char: str) -> bool:
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def normalize_text(text: str) -> str:
    """NFC-normalise, lowercase, turn punctuation into spaces and collapse whitespace.

    Diacritics are kept: "Hà Nội" and "Ha Noi" stay different.
    """
    lowered = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    spaced = "".join(" " if _is_punctuation(char) else char for char in lowered)
    return " ".join(spaced.split())


def syllables(text: str) -> list[str]:
    """Split normalised text into Vietnamese syllables (whitespace tokens)."""
    return normalize_text(text).split()


def is_abstention(prediction: str, abstentions: Iterable[str] = ()) -> bool:
    """True when the prediction is empty or is, as a whole, one of the abstention phrases."""
    normalized = normalize_text(prediction)
    return not normalized or normalized in {normalize_text(phrase) for phrase in abstentions}
