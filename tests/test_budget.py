"""Prompt token budgets: fields shortened at word boundaries, by policy, always recorded."""

from __future__ import annotations

import pytest

from vnllmtest.budget import MAX_TOKEN_CHARS, BudgetError, bounded, fit
from vnllmtest.prompt_spec import PromptBudget

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


def test_a_field_far_longer_than_the_budget_is_cut_by_characters_before_it_is_measured():
    """64 characters per token of the budget are kept (after a whole word) before the prompt is ever
    rendered: a 40,000-character field with a 12-token budget is measured at 768 characters at most, and
    the result is the one the whole field would give; the cut and the whole field's words are recorded."""
    seen = []

    def measured(fields):
        seen.append(len(fields["passages"]))
        return words(fields)

    text = "một hai " * 5000
    fields, truncation = fit({"passages": text}, PromptBudget(max_tokens=12, field="passages", policy="head"), measured)
    assert max(seen) <= 12 * MAX_TOKEN_CHARS and fields["passages"] == "một hai một hai một hai một hai"
    assert (truncation.words_total, truncation.words_kept) == (10_000, 8)
    assert truncation.chars_cut == len(text) - 767 and truncation.tokens_before == 4 + 192  # 96 × "một hai"


def test_a_long_list_keeps_each_passage_s_share_of_characters_and_a_giant_word_is_dropped():
    budget = PromptBudget(max_tokens=4, field="passages")  # 256 characters
    passages = ["a " * 3000, "b " * 1000, "c"]
    cut, chars, dropped = bounded({"passages": passages}, budget)
    assert [len(p) for p in cut["passages"]] == [191, 63]  # 3/4 and 1/4 of 256, after a whole word; "c" gets none
    assert (chars, dropped) == (8001 - 254, 4001 - 128)
    assert bounded({"passages": "x" * 10_000}, budget)[0] == {"passages": ""}  # never a word cut in the middle
    short = {"passages": PASSAGES}
    assert bounded(short, budget) == (short, 0, 0)
