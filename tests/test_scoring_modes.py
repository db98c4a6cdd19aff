"""One metric name, one computation: `accuracy` is generate+extract, `accuracy_loglik` the
log-likelihood choice; log-probabilities that are missing or broken never become an answer."""

from __future__ import annotations

import math

import pytest

from vnllmtest.loaders.base import Item
from vnllmtest.runner import Prediction
from vnllmtest.scoring import score
from vnllmtest.suite import load_suite

from support import REPO

ITEM = Item("07-0042", {"question": "Sông nào dài nhất Việt Nam?"}, ("C",), ("A", "B", "C", "D"))
FIVE = Item("41-0003", {"question": "Năm nào?"}, ("E",), ("A", "B", "C", "D", "E"))


def spec_with(mode: str, pass_metric: str):
    suite = load_suite(REPO / "suites" / "vmlu.yaml")
    metrics = {"generate": ["accuracy"], "loglikelihood": ["accuracy_loglik"], "both": ["accuracy"]}[mode]
    return suite.spec.model_copy(
        update={
            "scoring": suite.spec.scoring.model_copy(update={"mode": mode}),
            "metrics": metrics,
            "item_pass": suite.spec.item_pass.model_copy(update={"metric": pass_metric}),
            "gates": [],
        }
    )


def loglik(scores: dict[str, float] | None, finish: str = "stop") -> Prediction:
    return Prediction("loglikelihood", "", scores, finish, 0)


def generation(text: str, finish: str = "stop") -> Prediction:
    return Prediction("generate", text, None, finish, 3)


def test_both_modes_score_each_metric_from_its_own_mode():
    outcome = score(spec_with("both", "accuracy"), ITEM, loglik({"A": -0.2, "B": -3, "C": -2, "D": -4}), generation("Đáp án: C"))
    assert outcome.metrics == {"accuracy": 1.0, "accuracy_loglik": 0.0, "mode_agreement": 0.0}
    assert (outcome.status, outcome.answer, outcome.loglik_answer) == ("passed", "C", "A")


def test_generate_mode_reports_only_the_generate_accuracy():
    outcome = score(spec_with("generate", "accuracy"), ITEM, generation("Tôi chọn C."))
    assert outcome.metrics == {"accuracy": 1.0} and outcome.loglik_answer is None


@pytest.mark.parametrize(
    "scores, reason",
    [
        (None, "no option log-probabilities"),
        ({}, "no option log-probabilities"),
        ({"A": -math.inf, "B": -math.inf, "C": -math.inf, "D": -math.inf}, "no option label"),
        ({"X": -0.1, " Z": -0.3}, "no option label"),
        ({"A": math.nan, "B": -1.0, "C": -2.0, "D": -3.0}, "option A is nan"),
        ({"A": -1.0, "B": math.inf, "C": -2.0, "D": -3.0}, "option B is inf"),
    ],
)
def test_unreadable_log_probabilities_leave_accuracy_loglik_unscored(scores, reason):
    both = score(spec_with("both", "accuracy"), ITEM, loglik(scores), generation("C"))
    assert both.metrics == {"accuracy": 1.0} and both.status == "passed" and both.loglik_answer is None
    alone = score(spec_with("loglikelihood", "accuracy_loglik"), ITEM, loglik(scores))
    assert alone.status == "error" and alone.failure_class == "unscored" and alone.metrics == {}
    assert alone.answer is None and reason in alone.message


def test_options_missing_from_the_top_logprobs_lose_but_the_present_ones_decide():
    outcome = score(spec_with("loglikelihood", "accuracy_loglik"), ITEM, loglik({"C": -1.5, "B": -2.5}))
    assert outcome.metrics == {"accuracy_loglik": 1.0} and outcome.answer == "C"


def test_a_tie_at_the_top_is_no_answer_and_never_the_first_label():
    tied = score(spec_with("loglikelihood", "accuracy_loglik"), ITEM, loglik({"A": -1.0, "B": -1.0, "C": -1.0, "D": -1.0}))
    assert tied.metrics == {"accuracy_loglik": 0.0} and tied.answer is None and tied.failure_class == "ambiguous"


def test_five_options_and_the_fifth_answer():
    outcome = score(spec_with("both", "accuracy"), FIVE, loglik({"A": -5, "B": -4, "C": -3, "D": -2, "E": -1}), generation("E"))
    assert outcome.metrics == {"accuracy": 1.0, "accuracy_loglik": 1.0, "mode_agreement": 1.0}


@pytest.mark.parametrize(
    "reply, finish, expected",
    [
        ("Đáp án: A", "stop", "wrong"),
        ("Câu này khó quá.", "stop", "extraction_failed"),
        ("Đáp án: C hoặc D", "stop", "ambiguous"),
        ("Tôi sẽ phân tích từng", "length", "extraction_failed"),
        ("Đáp án: B", "length", "truncated"),
    ],
)
def test_generate_misses_name_why(reply, finish, expected):
    outcome = score(spec_with("generate", "accuracy"), ITEM, generation(reply, finish))
    assert outcome.status == "missed" and outcome.failure_class == expected and outcome.metrics == {"accuracy": 0.0}


def test_mode_agreement_needs_a_letter_from_the_generation():
    outcome = score(spec_with("both", "accuracy"), ITEM, loglik({"A": -1, "B": -2, "C": -3, "D": -4}), generation("không biết"))
    assert outcome.metrics == {"accuracy": 0.0, "accuracy_loglik": 0.0, "mode_agreement": 0.0}
