"""Vietnamese words for the word-level scores: underthesea's segmentation, normalised like syllables.

underthesea is an optional extra (`pip install 'vnllmtest[words]'`); it is imported on the first text
segmented, never when this module is imported.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable

from vnllmtest.metrics.text import is_punctuation, normalize_text

SEGMENTER_MODULE = "underthesea"
SEGMENTER_INSTALL = "pip install 'vnllmtest[words]'"
TRANSLATION = "underthesea.pipeline.translate"


@functools.lru_cache(maxsize=8192)  # gold answers and summaries are scored once per model
def words(text: str) -> tuple[str, ...]:
    """The words of `text`. underthesea segments the NFC original with every punctuation mark set apart (its
    segmenter reads case: "Cô Mai Anh" holds the name "Mai Anh"; apart, "COVID-19" and "TP.HCM" hold no
    mark inside a word, as "COVID 19" and "TP. HCM" do not). Each word is then normalised as syllables are
    (lowercase, tone-mark placement), its syllables joined by one space; marks drop out."""
    spaced = "".join(f" {char} " if is_punctuation(char) else char for char in unicodedata.normalize("NFC", text))
    normalised = (normalize_text(word) for word in _segmenter()(spaced))
    return tuple(word for word in normalised if word)


@functools.cache
def _segmenter() -> Callable[[str], list[str]]:
    """underthesea's word_tokenize. Its package imports every optional pipeline on import, and its translation
    pipeline imports torch and transformers (about 2.5 s): that one is held back unless torch is already
    loaded, so that scoring a cached run stays free of torch (`underthesea.translate` is then None)."""
    held_back = "torch" not in sys.modules and TRANSLATION not in sys.modules
    if held_back:
        sys.modules[TRANSLATION] = None  # type: ignore[assignment]  # an import of it fails, which underthesea allows
    try:
        from underthesea import word_tokenize
    finally:
        if held_back:
            del sys.modules[TRANSLATION]
    return word_tokenize
