"""Tests for vnllmtest.metrics.scores."""

import math
import time
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vnllmtest.metrics import (
    accuracy,
    exact_match,
    rouge_l,
    rouge_n,
    syllables,
    token_f1,
)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def rouge_2(prediction, references, abstentions=()):
    return rouge_n(prediction, references, n=2, abstentions=abstentions)


REFERENCE_SCORES = [exact_match, token_f1, rouge_n, rouge_2, rouge_l]

# ---------------------------------------------------------------- worked examples


def test_exact_match_ignores_case_punctuation_and_normal_form():
    assert exact_match(nfd("“Hà Nội.”"), "hà nội") == 1.0
    assert exact_match("ĐÀ NẴNG", ["đà nẵng"]) == 1.0


def test_exact_match_keeps_diacritics():
    assert exact_match("Ha Noi", "Hà Nội") == 0.0


def test_max_over_references():
    # pred "thủ đô hà nội" (4) vs "hà nội" (2): overlap 2 -> 2*2/(4+2) = 2/3; vs "sài gòn": 0.
    assert token_f1("thủ đô Hà Nội", ["Sài Gòn", "Hà Nội"]) == pytest.approx(2 / 3)
    assert exact_match("Hà Nội", ["Sài Gòn", "hà nội"]) == 1.0


def test_token_f1_with_repeated_syllables():
    # pred {rất: 2, tốt: 1} (3), ref {rất: 1, tốt: 3} (4); clipped overlap rất 1 + tốt 1 = 2.
    # P = 2/3, R = 2/4, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7.
    assert token_f1("rất rất tốt", "rất tốt tốt tốt") == pytest.approx(4 / 7)


def test_token_f1_empty_sides():
    assert token_f1("", "") == 1.0
    assert token_f1("...", "Hà Nội") == 0.0
    assert token_f1("Hà Nội", "!") == 0.0


def test_rouge_l_hand_computed():
    # pred "con mèo ngồi trên thảm" (5), ref "con mèo nằm trên cái thảm" (6).
    # LCS = con mèo trên thảm = 4; P = 4/5, R = 4/6, F = 2*4/(5+6) = 8/11.
    assert rouge_l("Con mèo ngồi trên thảm", "con mèo nằm trên cái thảm") == pytest.approx(8 / 11)


def test_rouge_2_hand_computed():
    # pred bigrams: hôm nay | nay trời | trời đẹp | đẹp quá (4)
    # ref bigrams:  hôm nay | nay trời | trời rất | rất đẹp (4); overlap 2 -> F = 2*2/(4+4) = 0.5.
    assert rouge_n("Hôm nay trời đẹp quá", "hôm nay trời rất đẹp", n=2) == pytest.approx(0.5)


def test_rouge_n_clips_repeated_ngrams():
    # pred bigrams: (a a) x3 (4 syllables), ref bigrams: (a a) x1, (a b) x1; clipped overlap 1.
    # F = 2*1/(3+2) = 0.4.
    assert rouge_n("à à à à", "à à b", n=2) == pytest.approx(0.4)


def test_rouge_is_zero_without_ngrams():
    assert rouge_l("", "") == 0.0
    assert rouge_n("", "") == 0.0
    assert rouge_n("một", "một", n=2) == 0.0  # one syllable has no bigram


def test_rouge_n_rejects_non_positive_n():
    with pytest.raises(ValueError):
        rouge_n("a", "a", n=0)


@pytest.mark.parametrize("score", REFERENCE_SCORES)
def test_unanswerable_rewards_only_abstention(score):
    assert score("", []) == 1.0
    assert score(" . ", []) == 1.0
    assert score("Hà Nội", []) == 0.0
    assert score("Tôi không biết", []) == 0.0
    assert score(nfd("TÔI KHÔNG BIẾT."), [], abstentions=["tôi không biết"]) == 1.0


@pytest.mark.parametrize("score", REFERENCE_SCORES)
def test_unanswerable_abstention_is_not_a_substring_match(score):
    prediction = "không có câu trả lời nào đúng hơn Hà Nội"
    assert score(prediction, [], abstentions=["không có câu trả lời"]) == 0.0


def test_long_rouge_l_is_fast():
    prediction = " ".join(f"âm{i % 97}" for i in range(1000))
    reference = " ".join(f"âm{i % 89}" for i in range(1000))
    started = time.perf_counter()
    value = rouge_l(prediction, reference)
    assert time.perf_counter() - started < 3.0
    assert 0.0 < value < 1.0


def test_accuracy():
    # positions 0 and 2 match out of 4 -> 0.5; None never matches.
    assert accuracy(["A", None, "C", "A"], ["A", "B", "C", "D"]) == 0.5
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy(["A"], ["A", "B"])


# ---------------------------------------------------------------- properties

LOWER = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
PUNCTUATION = ".,;:!?\"'()[]-–—“”‘’«»…/"
words = st.lists(st.text(alphabet=LOWER + LOWER.upper(), min_size=1, max_size=6), max_size=8)
texts = st.text(alphabet=LOWER + LOWER.upper() + PUNCTUATION + " \t", max_size=40)
reference_lists = st.lists(texts, min_size=1, max_size=3)


@given(texts, reference_lists)
def test_scores_are_nfc_nfd_invariant(prediction, references):
    for score in REFERENCE_SCORES:
        assert score(nfd(prediction), [nfd(ref) for ref in references]) == score(
            prediction, references
        )


@given(texts, reference_lists)
def test_scores_are_case_invariant(prediction, references):
    assume(prediction.upper().lower() == prediction.lower())
    for score in REFERENCE_SCORES:
        assert score(prediction.upper(), references) == score(prediction.lower(), references)


@given(
    words, words, st.lists(st.text(alphabet=PUNCTUATION + " ", min_size=1), min_size=8, max_size=8)
)
def test_scores_ignore_punctuation_between_syllables(prediction_words, reference_words, separators):
    plain = " ".join(prediction_words)
    punctuated = "".join(
        word + sep for word, sep in zip(prediction_words, separators, strict=False)
    )
    for score in REFERENCE_SCORES:
        assert score(punctuated, " ".join(reference_words)) == score(
            plain, " ".join(reference_words)
        )


@given(texts, st.lists(texts, max_size=3), st.lists(texts, max_size=2))
def test_scores_are_bounded(prediction, references, abstentions):
    for score in REFERENCE_SCORES:
        assert 0.0 <= score(prediction, references, abstentions=abstentions) <= 1.0


@given(texts, texts)
def test_f1_and_rouge_l_are_symmetric(first, second):
    assert token_f1(first, second) == token_f1(second, first)
    assert rouge_l(first, second) == rouge_l(second, first)


@given(texts)
def test_exact_match_of_itself(text):
    assume(syllables(text))
    assert exact_match(text, [text]) == 1.0
    assert token_f1(text, text) == 1.0
    assert rouge_l(text, text) == 1.0
