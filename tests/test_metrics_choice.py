"""Tests for vnllmtest.metrics.choice."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnllmtest.metrics import extract_choice, read_choice

ABCD = ["A", "B", "C", "D"]

CASES = [
    ("Đáp án: C", "C"),
    ("đáp án: c", "C"),
    ("Chọn đáp án B", "B"),
    ("Chọn B.", "B"),
    ("(A) Hà Nội", "A"),
    ("**B**.", "B"),
    ("Đáp án đúng là D.", "D"),
    ("Câu trả lời: A", "A"),
    ("Answer: B", "B"),
    ("The answer is (C)", "C"),
    ("C", "C"),
    ("C.", "C"),
    ("B. Hà Nội là thủ đô", "B"),
    ("  D) 1945", "D"),
    ("Phương án đúng: A", "A"),
    ("Tôi nghĩ đáp án là **C** vì ...", "C"),
    ("Cà phê là đồ uống", None),
    ("Đây là câu hỏi khó", None),
    ("", None),
    ("Không biết", None),
    ("Vitamin C rất tốt cho sức khỏe", None),
    ("ĐÁP ÁN: B", "B"),
    ("Đáp án: E", None),
    # own cases
    ("Bánh mì ngon", None),
    ("CÂU HỎI này khó quá", None),
    ("Lựa chọn đúng là: [D]", "D"),
    ("Trả lời - b", "B"),
    ("Câu trả lời:\n\n**A**", "A"),
    ("Đáp án: Có thể là B", None),  # the word after the cue is not a label; no other rule applies
    ("Tôi chọn anh ấy", None),  # "a" inside "anh" is not standalone
    ("a. Hà Nội", None),  # lowercase "a" is a Vietnamese word without a cue
    ("Vì (B) đúng nên tôi chắc chắn", "B"),
    ("So sánh (A) với (B) thì khó", None),  # two distinct marked labels: ambiguous
    ("A, B và C đều sai", None),
    ("Đáp án A; câu trả lời B", None),  # two different answers without a final marker: ambiguous
    ("B. Sai. Đáp án: C", "C"),  # an explicit cue beats a leading label
    ("answered B", None),  # the cue must be a whole word
]


@pytest.mark.parametrize("form", ["NFC", "NFD"])
@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_choice(text, expected, form):
    assert extract_choice(unicodedata.normalize(form, text), ABCD) == expected


def test_the_two_answers_reply_is_ambiguous_not_unreadable():
    assert read_choice("Đáp án A; câu trả lời B", ABCD).ambiguous
    assert not read_choice("Không biết", ABCD).ambiguous


def test_labels_come_from_the_caller():
    assert extract_choice("Đáp án: E", ["A", "B", "C", "D", "E"]) == "E"
    assert extract_choice("D", ["A", "B", "C"]) is None
    assert extract_choice("Chọn 2", ["1", "2", "3"]) == "2"
    assert extract_choice("Đáp án: 12", ["1", "12"]) == "12"
    assert extract_choice("Đáp án: A", []) is None


def test_returns_label_exactly_as_given():
    label = unicodedata.normalize("NFD", "Á")  # "A" + combining acute
    assert extract_choice("Đáp án: Á", ["A", label]) is label


label_sets = st.sampled_from(
    [ABCD, ["A", "B", "C"], ["A", "B", "C", "D", "E"], ["1", "2", "3", "4"]]
)


@given(st.text(max_size=60), label_sets)
def test_never_raises_and_returns_a_label_or_none(text, labels):
    assert extract_choice(text, labels) in [*labels, None]


@given(st.text(max_size=30), st.lists(st.text(max_size=3), max_size=5))
def test_arbitrary_labels_never_raise(text, labels):
    assert extract_choice(text, labels) in [*labels, None]


CAPITALISED_WORDS = (
    "Cà Đà Bắc Ánh Đây Bánh Cần Đông Ấn Ăn Ẩm Dương Ba Bố Chị Anh Em Cô Dì Đó CÂU HỎI ĐÁP BÀI ĐÂY "
    "Cũng Biển Đất Ai Ở Với Bởi Dạ Cám Ơn Đẹp Bàn phê là nước biển đẹp mì cơm vui nhà đúng sai khó"
).split()


@given(
    st.lists(st.sampled_from(CAPITALISED_WORDS), max_size=12),
    st.sampled_from([" ", ", ", ". ", "! ", "\n"]),
    st.sampled_from(["NFC", "NFD"]),
)
def test_never_fooled_by_capitals_inside_words(words, separator, form):
    text = unicodedata.normalize(form, separator.join(words))
    assert extract_choice(text, ABCD) is None
