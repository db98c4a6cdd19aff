"""Tone-mark placement: old ("hòa") and new ("hoà") placement are one spelling for every metric."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnllmtest.metrics import exact_match, normalize_text, rouge_l, rouge_n, token_f1
from vnllmtest.metrics.tones import TONE_MARKS, canonical_tones

# (old placement, new placement): open syllables with oa, oe, uy, and misplaced marks typed by hand.
SAME_SYLLABLE = [
    ("hòa", "hoà"),
    ("hóa", "hoá"),
    ("họa", "hoạ"),
    ("hỏa", "hoả"),
    ("khóa", "khoá"),
    ("tỏa", "toả"),
    ("xóa", "xoá"),
    ("lõa", "loã"),
    ("góa", "goá"),
    ("đóa", "đoá"),
    ("thỏa", "thoả"),
    ("ngọa", "ngoạ"),
    ("khỏe", "khoẻ"),
    ("lòe", "loè"),
    ("xòe", "xoè"),
    ("nhòe", "nhoè"),
    ("hòe", "hoè"),
    ("chóe", "choé"),
    ("thủy", "thuỷ"),
    ("lũy", "luỹ"),
    ("tụy", "tuỵ"),
    ("hủy", "huỷ"),
    ("túy", "tuý"),
    ("thúy", "thuý"),
    ("lụy", "luỵ"),
    ("nhụy", "nhuỵ"),
    ("chùy", "chuỳ"),
    ("qúy", "quý"),  # qu is the onset: the mark belongs on y
    ("qụy", "quỵ"),
    ("gìa", "già"),  # gi is the onset: the mark belongs on a
    ("gíup", "giúp"),
    ("hòang", "hoàng"),  # closed syllables: the mark goes on the vowel before the final consonant
    ("tóan", "toán"),
    ("khóet", "khoét"),
    ("hùynh", "huỳnh"),
    ("mừơi", "mười"),  # ươ: on ơ
    ("rựơu", "rượu"),
    ("tíên", "tiến"),
    ("múôn", "muốn"),
    ("chuỵên", "chuyện"),
    ("ngòai", "ngoài"),  # three vowels: on the middle one
    ("xóay", "xoáy"),
    ("khủyu", "khuỷu"),
    ("ngọeo", "ngoẹo"),
    ("thủơ", "thuở"),
    ("họăc", "hoặc"),
]

# Different words: the tone, a vowel mark or a letter differs, so they must stay different.
DIFFERENT_WORDS = [
    ("hòa", "hóa"),
    ("hoà", "hoá"),
    ("thủy", "thùy"),
    ("hòa", "hoa"),
    ("khỏe", "khoe"),
    ("quý", "quy"),
    ("kỹ", "kĩ"),
    ("lý", "lí"),
    ("mỹ", "mĩ"),
    ("sỹ", "sĩ"),
    ("dì", "gì"),
    ("dặt", "giặt"),
    ("mười", "mươi"),
    ("mười", "muời"),
    ("thuở", "thửa"),
    ("hoặc", "hoắc"),
    ("tuần", "tuấn"),
    ("giữ", "dữ"),
    ("ngoài", "ngoái"),
    ("loà", "lóa"),
]

# Already correct in both placements: unchanged.
STABLE = [
    "giữa", "giỏi", "già", "gì", "gìn", "giếng", "giường", "quốc", "quyển", "quạ", "quẹo", "quả", "quỳnh",
    "nghiêng", "người", "được", "hiểu", "yếu", "ý", "cừu", "gửi", "túi", "mọi", "kìa", "múa", "mèo", "màu",
    "máy", "mấy", "kêu", "muối", "khuấy", "hoàn", "tuýt", "đường", "Đà", "Nẵng", "Hà", "Nội", "thuế", "huệ",
]

# Not Vietnamese syllables, or not one tone mark on a vowel: left exactly as they are.
FOREIGN = ["café", "résumé", "año", "ñu", "niño", "josé", "crème", "pokémon", "naïve", "zürich", "são", "à1", "x2ô"]


@pytest.mark.parametrize(("old", "new"), SAME_SYLLABLE)
def test_both_placements_spell_one_syllable(old, new):
    assert canonical_tones(old) == canonical_tones(new) == new
    assert normalize_text(old) == normalize_text(new)


@pytest.mark.parametrize(("first", "second"), DIFFERENT_WORDS)
def test_other_spelling_differences_stay(first, second):
    assert normalize_text(first) != normalize_text(second)


@pytest.mark.parametrize("word", STABLE)
def test_correct_syllables_are_kept(word):
    assert canonical_tones(word) == word
    assert normalize_text(word) == word.lower()


@pytest.mark.parametrize("token", FOREIGN)
def test_other_tokens_are_untouched(token):
    assert canonical_tones(token) == token
    assert canonical_tones(token.upper()) == token.upper()


def test_upper_and_title_case_keep_their_case():
    assert canonical_tones("HÒA") == "HOÀ"
    assert canonical_tones("Thủy") == "Thuỷ"
    assert canonical_tones("KHỎE") == "KHOẺ"
    assert canonical_tones("QÚY") == "QUÝ"
    assert canonical_tones("GÌA") == "GIÀ"
    assert normalize_text("Thủy điện HÒA BÌNH") == normalize_text("thuỷ điện Hoà Bình") == "thuỷ điện hoà bình"


def test_decomposed_input_is_placed_like_composed_input():
    for old, new in SAME_SYLLABLE:
        assert canonical_tones(unicodedata.normalize("NFD", old)) == new


def test_every_metric_sees_one_spelling():
    prediction, reference = "Thủy điện Hòa Bình khỏe", "thuỷ điện Hoà Bình khoẻ"
    for score in (exact_match, token_f1, rouge_l, rouge_n):
        assert score(prediction, [reference]) == 1.0
    assert token_f1("hòa bình", ["hóa bình"]) == 0.5  # a different tone is a different syllable


# Toneless syllables of our own, to put every tone on every vowel and check one canonical form.
BARE = [
    "hoa", "khoe", "thuy", "quy", "gia", "giup", "hoang", "toan", "mươi", "rươu", "tiên", "chuyên", "ngoai",
    "xoay", "khuyu", "ngoeo", "thuơ", "hoăc", "ngươi", "đươc", "nghiêng", "yêu", "khuây", "huynh", "muôn",
    "quôc", "giương", "Hoa", "THUY",
]


def _with_tone_at(word: str, index: int, tone: str) -> str:
    return unicodedata.normalize("NFC", word[: index + 1] + tone + word[index + 1 :])


@given(st.sampled_from(BARE), st.sampled_from(sorted(TONE_MARKS)), st.data())
def test_a_tone_on_any_vowel_of_a_syllable_has_one_canonical_form(word, tone, data):
    vowels = [i for i, char in enumerate(word) if unicodedata.normalize("NFD", char)[0].lower() in "aeiouy"]
    first, second = data.draw(st.sampled_from(vowels)), data.draw(st.sampled_from(vowels))
    one, other = canonical_tones(_with_tone_at(word, first, tone)), canonical_tones(_with_tone_at(word, second, tone))
    assert one == other
    assert canonical_tones(one) == one  # idempotent
    assert [c for c in unicodedata.normalize("NFD", one) if c in TONE_MARKS] == [tone]


@given(st.sampled_from(BARE), st.sampled_from(sorted(TONE_MARKS)), st.sampled_from(sorted(TONE_MARKS)))
def test_different_tones_stay_different(word, tone, other):
    if tone != other:
        assert canonical_tones(_with_tone_at(word, 0, tone)) != canonical_tones(_with_tone_at(word, 0, other))


def test_long_texts_cost_little():
    syllables = "Hòa Bình thủy điện khỏe mạnh người Việt Nam xây dựng công trình lớn nhất Đông Nam Á".split()
    text = " ".join(syllables[i % len(syllables)] + ("," if i % 7 == 0 else "") for i in range(20_000))
    normalize_text(text)  # warm the per-syllable cache
    started = time.perf_counter()
    for _ in range(5):
        normalize_text(text)
    per_text = (time.perf_counter() - started) / 5
    assert per_text < 0.25, f"normalising 20,000 syllables took {per_text:.3f}s"
