"""Tests for vnllmtest.metrics.text."""

import string
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from vnllmtest.metrics import is_abstention, normalize_text, syllables


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_lowercases_and_keeps_diacritics():
    assert normalize_text("  Hà   Nội\tlà THỦ ĐÔ ") == "hà nội là thủ đô"


def test_diacritics_distinguish_words():
    assert normalize_text("Ha Noi") != normalize_text("Hà Nội")


def test_d_with_stroke_lowercases():
    assert normalize_text("ĐÀ NẴNG") == "đà nẵng"
    assert normalize_text("Đ") == "đ"


def test_nfd_input_gives_nfc_output():
    decomposed = nfd("Thành phố Hồ Chí Minh")
    assert decomposed != "Thành phố Hồ Chí Minh"
    assert normalize_text(decomposed) == "thành phố hồ chí minh"


def test_unicode_quotes_and_dashes_become_spaces():
    assert normalize_text("“Hà Nội”—‘thủ đô’ «Việt Nam» – 1010") == "hà nội thủ đô việt nam 1010"


def test_ascii_punctuation_becomes_space():
    assert normalize_text("a+b=c; (d)/e") == "a b c d e"


def test_no_stopword_or_article_removal():
    assert normalize_text("The answer là một con mèo") == "the answer là một con mèo"


def test_syllables_split_on_whitespace():
    assert syllables("Xin chào, Việt Nam!") == ["xin", "chào", "việt", "nam"]
    assert syllables(" ... ") == []


def test_abstention_empty_prediction():
    assert is_abstention("")
    assert is_abstention("  ?! ")


def test_abstention_matches_declared_phrase_after_normalisation():
    assert is_abstention(nfd("KHÔNG CÓ CÂU TRẢ LỜI."), ["không có câu trả lời"])


def test_abstention_is_never_a_substring_match():
    phrases = ["không có câu trả lời"]
    assert not is_abstention("không có câu trả lời nào đúng hơn Hà Nội", phrases)
    assert not is_abstention("không có câu trả lời", [])


vietnamese_text = st.text(
    alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    "AĂÂĐÊÔƠƯÀÁẢÃẠẦẤẨẪẬỀẾỂỄỆ .,!?“”-",
    max_size=40,
)


@given(st.text(max_size=40))
def test_normalize_is_nfc_nfd_invariant(text):
    assert normalize_text(nfd(text)) == normalize_text(unicodedata.normalize("NFC", text))


@given(st.text(max_size=40))
def test_normalize_is_idempotent_and_has_no_punctuation(text):
    normalized = normalize_text(text)
    assert normalize_text(normalized) == normalized
    assert not any(
        char in string.punctuation or unicodedata.category(char).startswith("P")
        for char in normalized
    )
    assert normalized == normalized.strip() and "  " not in normalized


@given(vietnamese_text)
def test_abstention_of_itself(text):
    assert is_abstention(text, [text])
