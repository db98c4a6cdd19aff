"""Prompt token budgets: shorten one field of an item, at word boundaries, until the prompt fits.

Nothing is cut silently: every shortened item carries a `Truncation` record for the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vnllmtest.suite import PromptBudget

_WORD = re.compile(r"\S+")


class BudgetError(Exception):
    """The prompt does not fit even with the budgeted field emptied."""


@dataclass(frozen=True)
class Truncation:
    """What a budget did to one item: the field, the policy and how much was kept."""

    field: str
    policy: str
    max_tokens: int
    tokens_before: int
    tokens_after: int
    words_total: int
    words_kept: int


def fit(
    fields: Mapping[str, Any], budget: PromptBudget, measure: Callable[[Mapping[str, Any]], int]
) -> tuple[Mapping[str, Any], Truncation | None]:
    """`fields` with `budget.field` shortened so that `measure(fields)` (prompt tokens) is at most
    `budget.max_tokens`; the most words that fit are kept (binary search over the word count)."""
    before = measure(fields)
    if before <= budget.max_tokens:
        return fields, None
    value = fields.get(budget.field)
    passages = [value] if isinstance(value, str) else value
    if not isinstance(passages, list) or not all(isinstance(p, str) for p in passages):
        raise BudgetError(f"prompt.budget.field '{budget.field}' must name a text or a list of texts in the record")
    ends = [[match.end() for match in _WORD.finditer(passage)] for passage in passages]
    total = sum(map(len, ends))

    def shortened(kept: int) -> dict[str, Any]:
        cut = _cut(passages, ends, kept, total, budget.policy)
        return {**fields, budget.field: cut[0] if isinstance(value, str) else [p for p in cut if p]}

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
    return result, Truncation(budget.field, budget.policy, budget.max_tokens, before, after, total, low)


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
