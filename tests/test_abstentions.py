"""SQuAD-2.0 abstentions: a declared phrase, as a whole, is the empty answer; never a substring match."""

from __future__ import annotations

import unicodedata

import pytest

from vnllmtest.loaders.base import Item
from vnllmtest.metrics import exact_match, is_abstention, rouge_l, rouge_n, token_f1
from vnllmtest.runner import Prediction
from vnllmtest.scoring import score as score_item
from vnllmtest.suite import load_suite

from support import REPO

SHIPPED = load_suite(REPO / "suites" / "visquad2.yaml").spec.scoring.abstentions
SCORES = [exact_match, token_f1, rouge_l, rouge_n]

# Replies that abstain, in the shapes models write them.
ABSTAINING = [
    "Không có câu trả lời.",
    "không có câu trả lời",
    "KHÔNG CÓ CÂU TRẢ LỜI",
    "“Không có câu trả lời”",
    "Trả lời: Không có câu trả lời.",
    "Đáp án: không có câu trả lời",
    "Câu trả lời: Đoạn văn không đề cập.",
    "trả lời : không thể trả lời",
    "Đoạn văn không có thông tin.",
    "Không thể trả lời câu hỏi này.",
    "Tôi không biết.",
    "Không có thông tin trong đoạn văn",
    "Không tìm thấy câu trả lời trong đoạn văn!",
    "Không đủ thông tin để trả lời.",
    "Thông tin không có trong đoạn văn.",
    "**Không có câu trả lời**",
    "",
    "  ...  ",
    "Trả lời:",
]

# Replies that mention an abstention phrase but are not one as a whole: scored as answers.
NOT_ABSTAINING = [
    "Không có câu trả lời, nhưng có lẽ là Hà Nội",
    "không có câu trả lời nào cả",
    "Theo đoạn văn, không có câu trả lời",
    "Hà Nội",
    "không",
    "không có",
    "không có tiền",
    "Không có quân đội thường trực",
    "Câu trả lời là năm 1945",
    "đoạn văn",
    "Tôi không biết bơi",
]


@pytest.mark.parametrize("reply", ABSTAINING)
def test_a_declared_phrase_as_a_whole_abstains(reply):
    assert is_abstention(reply, SHIPPED)
    assert is_abstention(unicodedata.normalize("NFD", reply), SHIPPED)


@pytest.mark.parametrize("reply", NOT_ABSTAINING)
def test_a_phrase_inside_a_longer_reply_does_not(reply):
    assert not is_abstention(reply, SHIPPED)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("reply", ABSTAINING)
def test_an_abstention_is_right_on_an_unanswerable_question(score, reply):
    assert score(reply, [], abstentions=SHIPPED) == 1.0


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("reply", NOT_ABSTAINING)
def test_an_answer_is_wrong_on_an_unanswerable_question(score, reply):
    assert score(reply, [], abstentions=SHIPPED) == 0.0


# (abstaining reply, gold answer that shares words with it): word overlap would give credit.
ABSTAINING_ON_ANSWERABLE = [
    ("Không có câu trả lời.", "không có lời giải thích nào"),
    ("Không có câu trả lời", "câu trả lời của nhà vua"),
    ("Đoạn văn không có thông tin.", "đoạn văn cổ nhất"),
    ("Không có thông tin", "thông tin mật"),
    ("Trả lời: không thể trả lời", "trả lời phỏng vấn"),
    ("Không tìm thấy câu trả lời.", "không tìm thấy"),
    ("Tôi không biết", "tôi"),
    ("Không có câu trả lời", "có lẽ không có"),
]


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize(("reply", "gold"), ABSTAINING_ON_ANSWERABLE)
def test_an_abstention_scores_zero_on_an_answerable_question(score, reply, gold):
    if score is not exact_match:
        assert score(reply, [gold]) > 0.0  # without the declared phrases it is scored by overlap
    assert score(reply, [gold], abstentions=SHIPPED) == 0.0


# (reply, gold, expected F1): golds that begin like an abstention still score as answers.
ANSWERS_LIKE_ABSTENTIONS = [
    ("Không có quân đội thường trực.", "không có quân đội thường trực", 1.0),
    ("không có thông tin tình báo", "Không có thông tin tình báo", 1.0),
    ("Không có câu trả lời thỏa đáng", "không có câu trả lời thoả đáng", 1.0),
    ("không có tiền", "không có tiền mặt", 2 * 3 / (3 + 4)),
    ("không thể trả lời ngay", "không thể trả lời ngay được", 2 * 5 / (5 + 6)),
    ("Trả lời: không có thuế", "không có thuế", 2 * 3 / (5 + 3)),
]


@pytest.mark.parametrize(("reply", "gold", "f1"), ANSWERS_LIKE_ABSTENTIONS)
def test_answers_that_contain_a_phrase_are_scored_by_overlap(reply, gold, f1):
    assert token_f1(reply, [gold], abstentions=SHIPPED) == pytest.approx(f1)
    assert exact_match(reply, [gold], abstentions=SHIPPED) == float(f1 == 1.0)


def test_the_prompt_names_the_first_phrase():
    suite = load_suite(REPO / "suites" / "visquad2.yaml")
    assert SHIPPED[0] == "không có câu trả lời"
    assert "{{ abstention }}" in suite.spec.prompt.template
    assert len(SHIPPED) == len(set(SHIPPED)) >= 10


def test_no_abstentions_declared_means_only_an_empty_reply_abstains():
    assert is_abstention("  ")
    assert not is_abstention("Không có câu trả lời.")
    assert token_f1("Không có câu trả lời.", []) == 0.0


# ---------------------------------------------------------------- through per-item scoring


def _scored(text: str, references: tuple[str, ...], finish_reason: str = "stop"):
    spec = load_suite(REPO / "suites" / "visquad2.yaml").spec
    item = Item("q", {"context": "Đoạn văn.", "question": "Câu hỏi?"}, references)
    return score_item(spec, item, Prediction("generate", text, None, finish_reason, 3))


def test_an_abstention_on_an_answerable_item_is_a_miss_and_passes_on_an_unanswerable_one():
    missed = _scored("Trả lời: Không có câu trả lời.", ("không có câu trả lời chính thức",))
    assert (missed.status, missed.failure_class, missed.metrics) == ("missed", "wrong", {"exact_match": 0.0, "f1": 0.0})
    passed = _scored("Đoạn văn không đề cập.", ())
    assert (passed.status, passed.metrics) == ("passed", {"exact_match": 1.0, "f1": 1.0})


def test_a_reply_cut_by_the_budget_stays_a_truncated_miss():
    cut = _scored("Theo đoạn văn thì người đã xây dựng kinh thành này vào cuối thế kỷ", ("vua Gia Long",), "length")
    assert (cut.status, cut.failure_class) == ("missed", "truncated")
