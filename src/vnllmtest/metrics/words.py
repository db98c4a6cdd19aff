"""Vietnamese words for the word-level scores: underthesea's segmentation, normalised like syllables.

underthesea is an optional extra (`pip install 'vnllmtest[words]'`); it is imported on the first text
segmented, never when this module is imported.
"""

from __future__ import annotations

import functools
import unicodedata

from vnllmtest.metrics.text import normalize_text

SEGMENTER_MODULE = "underthesea"
SEGMENTER_INSTALL = "pip install 'vnllmtest[words]'"


@functools.lru_cache(maxsize=8192)  # gold answers and summaries are scored once per model
def words(text: str) -> tuple[str, ...]:
    """The words of `text`. underthesea segments the NFC original (its segmenter reads case: "Cô Mai Anh"
    holds the name "Mai Anh"); each word is then normalised as syllables are (lowercase, punctuation to
    spaces, tone-mark placement), its syllables joined by one space. Words that normalise to nothing
    (punctuation) drop out."""
    from underthesea import word_tokenize

    normalised = (normalize_text(word) for word in word_tokenize(unicodedata.normalize("NFC", text)))
    return tuple(word for word in normalised if word)
