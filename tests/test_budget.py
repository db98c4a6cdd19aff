"""Prompt token budgets: fields shortened at word boundaries, by policy, always recorded."""

from __future__ import annotations

import pytest

from vnllmtest.budget import BudgetError, fit
from vnllmtest.suite import PromptBudget

PASSAGES = ["một hai ba bốn năm sáu bảy tám", "chín mười", "mười một mười hai mười ba mười bốn"]


def words(fields) -> int:
    """A stand-in tokenizer: one token per word of every passage, plus a 4-token instruction."""
    value = fields["passages"]
    texts = [value] if isinstance(value, str) else value
    return 4 + sum(len(text.split()) for text in texts)


def test_a_prompt_within_budget_is_untouched():
    fields = {"passages": PASSAGES}
    assert fit(fields, PromptBudget(max_tokens=100, field="passages"), words) == (fields, None)


def test_proportional_policy_keeps_the_same_share_of_every_passage():
    fields, truncation = fit({"passages": PASSAGES}, PromptBudget(max_tokens=12, field="passages"), words)
    assert fields["passages"] == ["một hai ba bốn", "chín", "mười một mười"]
    assert words(fields) == 12
    assert (truncation.tokens_before, truncation.tokens_after) == (22, 12)
    assert (truncation.words_total, truncation.words_kept) == (18, 8)
    assert truncation.policy == "proportional" and truncation.field == "passages"


def test_head_policy_keeps_passages_in_order_and_drops_the_rest():
    budget = PromptBudget(max_tokens=13, field="passages", policy="head")
    fields, truncation = fit({"passages": PASSAGES}, budget, words)
    assert fields["passages"] == ["một hai ba bốn năm sáu bảy tám", "chín"]
    assert truncation.words_kept == 9


def test_a_text_field_is_cut_after_a_whole_word_keeping_its_layout():
    text = "Dòng một có năm chữ.\nDòng hai cũng vậy nhé."
    fields, _ = fit({"passages": text}, PromptBudget(max_tokens=11, field="passages"), words)
    assert fields["passages"] == "Dòng một có năm chữ.\nDòng hai"


def test_a_prompt_too_long_without_the_field_is_an_error():
    with_long_instruction = lambda fields: words(fields) + 100  # noqa: E731
    with pytest.raises(BudgetError, match="104 tokens even with 'passages' empty; raise prompt.budget.max_tokens"):
        fit({"passages": PASSAGES}, PromptBudget(max_tokens=16, field="passages"), with_long_instruction)


def test_the_field_must_hold_text():
    with pytest.raises(BudgetError, match="must name a text or a list of texts"):
        fit({"passages": [1, 2]}, PromptBudget(max_tokens=16, field="passages"), lambda f: 100)
