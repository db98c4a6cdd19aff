"""Prompt token budgets: shorten one field of an item, at word boundaries, until the prompt fits.

A field far longer than any budget can hold is first cut by characters (`MAX_TOKEN_CHARS` per token of
the budget), so that a 60-megabyte record is never rendered or tokenized whole. Nothing is cut
silently: every shortened item carries a `Truncation` record for the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vnllmtest.prompt_spec import PromptBudget

MAX_TOKEN_CHARS = 64  # no token of a real vocabulary is longer (Gemma's longest has 31 characters)
_WORD = re.compile(r"\S+")
_LAST_SPACE = re.compile(r"\s\S*\Z")


class BudgetError(Exception):
    """The prompt does not fit even with the budgeted field emptied."""


@dataclass(frozen=True)
class Truncation:
    """What a budget did to one item: the field, the policy and how much was kept. `chars_cut`: the
    characters cut before measuring from a field longer than MAX_TOKEN_CHARS per token of the budget
    (`tokens_before` then counts the prompt after that cut; `words_total` counts the whole field)."""

    field: str
    policy: str
    max_tokens: int
    tokens_before: int
    tokens_after: int
    words_total: int
    words_kept: int
    chars_cut: int = 0


def fit(
    fields: Mapping[str, Any], budget: PromptBudget, measure: Callable[[Mapping[str, Any]], int]
) -> tuple[Mapping[str, Any], Truncation | None]:
    """`fields` with `budget.field` shortened so that `measure(fields)` (prompt tokens) is at most
    `budget.max_tokens`; the most words that fit are kept (binary search over the word count)."""
    fields, chars_cut, words_cut = bounded(fields, budget)
    before = measure(fields)
    if before <= budget.max_tokens and not chars_cut:
        return fields, None
    value = fields.get(budget.field)
    passages = _texts(value)
    if passages is None:
        raise BudgetError(f"prompt.budget.field '{budget.field}' must name a text or a list of texts in the record")
    ends = [[match.end() for match in _WORD.finditer(passage)] for passage in passages]
    total = sum(map(len, ends))

    def shortened(kept: int) -> dict[str, Any]:
        cut = _cut(passages, ends, kept, total, budget.policy)
        return {**fields, budget.field: cut[0] if isinstance(value, str) else [p for p in cut if p]}

    if before <= budget.max_tokens:  # the character cut alone made it fit
        return fields, Truncation(*_named(budget), before, before, total + words_cut, total, chars_cut)
    low, high = 0, total - 1  # the largest word count that fits lies in [low, high] if any does
    if measure(shortened(0)) > budget.max_tokens:
        raise BudgetError(
            f"the prompt has {measure(shortened(0))} tokens even with '{budget.field}' empty; "
            f"raise prompt.budget.max_tokens (now {budget.max_tokens})"
        )
    while low < high:
        middle = (low + high + 1) // 2
        if measure(shortened(middle)) <= budget.max_tokens:
            low = middle
        else:
            high = middle - 1
    result = shortened(low)
    after = measure(result)
    return result, Truncation(*_named(budget), before, after, total + words_cut, low, chars_cut)


def bounded(fields: Mapping[str, Any], budget: PromptBudget) -> tuple[Mapping[str, Any], int, int]:
    """`fields` with the budgeted field cut after a whole word to at most MAX_TOKEN_CHARS characters per
    token of the budget (each passage of a list keeping its share of them, or the first passages whole
    under the `head` policy), with the characters and the words cut; unchanged when it is shorter."""
    value = fields.get(budget.field)
    passages = _texts(value)
    if passages is None:
        return fields, 0, 0  # fit() names the problem
    limit, length = budget.max_tokens * MAX_TOKEN_CHARS, sum(map(len, passages))
    if length <= limit:
        return fields, 0, 0
    if budget.policy == "head":
        starts = [sum(map(len, passages[:i])) for i in range(len(passages))]
        room = [max(0, min(len(p), limit - start)) for p, start in zip(passages, starts)]
    else:
        room = [len(p) * limit // length for p in passages]
    cut = [_cut_after_word(p, n) for p, n in zip(passages, room)]
    words_cut = sum(sum(1 for _ in _WORD.finditer(p, len(c))) for p, c in zip(passages, cut))
    kept = cut[0] if isinstance(value, str) else [passage for passage in cut if passage]
    return {**fields, budget.field: kept}, length - sum(map(len, cut)), words_cut


def _cut_after_word(text: str, size: int) -> str:
    """The longest start of `text` of at most `size` characters that ends after a whole word."""
    if len(text) <= size or text[size].isspace():
        return text[:size]
    space = _LAST_SPACE.search(text, 0, size)  # the space before the word that `size` cuts
    return text[: space.start()] if space else ""


def field_chars(value: Any) -> int:
    """Characters of a budgeted field's texts (0 when it holds anything else)."""
    return sum(map(len, _texts(value) or []))


def _texts(value: Any) -> list[str] | None:
    """The passages of a budgeted field (a text is one), or None when it holds anything else."""
    passages = [value] if isinstance(value, str) else value
    if not isinstance(passages, list) or not all(isinstance(p, str) for p in passages):
        return None
    return passages


def _named(budget: PromptBudget) -> tuple[str, str, int]:
    return budget.field, budget.policy, budget.max_tokens


def _cut(passages: list[str], ends: list[list[int]], kept: int, total: int, policy: str) -> list[str]:
    """Each passage cut after the number of words the policy gives it (`kept` words in all);
    a passage given none becomes empty (and is dropped from a list)."""
    if policy == "head":
        shares, left = [], kept
        for passage_ends in ends:
            shares.append(min(left, len(passage_ends)))
            left -= shares[-1]
    elif total == 0:  # no words to share out (blank passages)
        shares = [0] * len(ends)
    else:  # proportional: every passage keeps the same share of its words
        shares = [len(passage_ends) * kept // total for passage_ends in ends]
        by_remainder = sorted(range(len(ends)), key=lambda i: -(len(ends[i]) * kept % total))
        for index in by_remainder[: kept - sum(shares)]:
            shares[index] += 1  # largest remainders first, so the shares add up to `kept`
    return [passage[: passage_ends[share - 1]] if share else "" for passage, passage_ends, share in zip(passages, ends, shares)]
