"""Vietnamese tone-mark placement: one canonical spelling for old ("hòa") and new ("hoà") placement.

A syllable's tone is one of five marks written on one of its vowels. Where it sits is a spelling
convention: the old one writes "hòa", "khỏe", "thủy", the new one "hoà", "khoẻ", "thuỷ". Both spell
the same syllable, so `canonical_tones` removes the mark and writes it back where the new rule puts
it (on the syllable's main vowel). Only placement changes: letters, vowel marks (ă â ê ô ơ ư) and the
tone itself are kept, so "hòa"/"hóa", "kỹ"/"kĩ" and "dì"/"gì" stay different. A token that does not
parse as one Vietnamese syllable with exactly one tone mark is returned unchanged.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Combining tone marks: huyền, sắc, hỏi, ngã, nặng.
TONE_MARKS = frozenset("\u0300\u0301\u0309\u0303\u0323")
_VOWELS = frozenset("aăâeêioôơuưy")
_BASE_VOWELS = frozenset("aeiouy")  # the vowel letters without any mark
_MARKED_VOWELS = frozenset("ăâêôơư")  # vowels carrying a quality mark: the tone goes on them
# Initial consonants, longest first so that "ngh" wins over "ng" and "n".
_ONSETS = sorted(
    "b c ch d đ g gh gi h k kh l m n ng ngh nh p ph qu r s t th tr v x".split(), key=len, reverse=True
)
_CODAS = frozenset(["", "c", "ch", "m", "n", "ng", "nh", "p", "t"])
# Vowel sequences of Vietnamese syllables after the onset (glides i/y/o/u included).
_NUCLEI = frozenset(
    "a ă â e ê i o ô ơ u ư y "
    "ai ao au ay âu ây eo êu ia iu iê oa oă oe oi oo ôi ơi ua uâ ue uê ui uô uơ uy ưa ưi ưu ươ yê "
    "iêu yêu oai oao oay oeo uây uôi uya uyê uyu ươi ươu".split()
)
# Open syllables whose two vowels take the tone on the second one in the new placement.
_SECOND_VOWEL = frozenset(["oa", "oe", "uy"])


@lru_cache(maxsize=1 << 16)
def canonical_tones(token: str) -> str:
    """`token` with its tone mark on the vowel the new placement rule names (case kept); any other
    token unchanged. Cached: a text has few distinct syllables, so long texts cost little."""
    decomposed = unicodedata.normalize("NFD", token)
    tones = [(i, char) for i, char in enumerate(decomposed) if char in TONE_MARKS]
    if len(tones) != 1 or not _on_a_vowel(decomposed, tones[0][0]):
        return token
    bare = unicodedata.normalize("NFC", "".join(char for char in decomposed if char not in TONE_MARKS))
    lowered = bare.lower()
    position = _tone_position(lowered) if len(lowered) == len(bare) else None
    if position is None:
        return token
    return unicodedata.normalize("NFC", bare[: position + 1] + tones[0][1] + bare[position + 1 :])


def _on_a_vowel(decomposed: str, mark: int) -> bool:
    """Whether the combining mark at `mark` sits on a vowel letter (not "ñ", say)."""
    base = next((c for c in reversed(decomposed[:mark]) if not unicodedata.combining(c)), "")
    return base.lower() in _BASE_VOWELS


def _tone_position(bare: str) -> int | None:
    """Index in the toneless, lower-case syllable of the letter that carries the tone; None when the
    text is not a Vietnamese syllable."""
    onset = next((o for o in _ONSETS if bare.startswith(o)), "")
    if onset == "gi" and not any(char in _VOWELS for char in bare[2:]):
        onset = "g"  # "gì", "gìn": the i is the vowel, not part of the onset
    start = len(onset)
    end = start
    while end < len(bare) and bare[end] in _VOWELS:
        end += 1
    nucleus, coda = bare[start:end], bare[end:]
    if nucleus not in _NUCLEI or coda not in _CODAS:
        return None
    marked = [i for i, char in enumerate(nucleus) if char in _MARKED_VOWELS]
    if marked:
        offset = marked[-1]  # "ươ" takes it on ơ, "uyê" on ê
    elif len(nucleus) == 1:
        offset = 0
    elif coda:
        offset = len(nucleus) - 1  # "hoàn", "tuýt": on the vowel before the final consonant
    elif len(nucleus) == 3 or nucleus in _SECOND_VOWEL:
        offset = 1  # "hoài", "khuỷu"; the new placement's "hoà", "khoẻ", "thuỷ"
    else:
        offset = 0  # "hái", "mèo", "túi", "kìa"
    return start + offset
