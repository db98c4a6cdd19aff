"""The judge's prompts, rendered through the judge backend or read back from the prediction cache.

As for the candidates' prompts (vnllmtest.rendering), a judge backend with a `prompt_identity` has each
rendered judge prompt cached in the `prompts` table, with whether it was primed and what its sections' token
budgets cut, under a digest of everything it is rendered from: the judge's prompt identity (tokenizer files,
chat template), the chat turns made of the uncut sections (rubric, section titles and texts, the strict
reminder of the retry), the primer and each section's token budget (the suite's, capped by the judge's
limits). A run whose judge prompts and verdicts are all cached so loads no tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vnllmtest.backends.base import Backend
from vnllmtest.budget import fit
from vnllmtest.cache import PredictionCache, cache_key
from vnllmtest.judge import judge_messages, primer
from vnllmtest.prompt_spec import PromptBudget
from vnllmtest.rendering import PROMPTS
from vnllmtest.rubrics import Rubric

JUDGE_PROMPT = "judge_prompt"  # the kind of a judge prompt's key in the cache's `prompts` table


@dataclass(frozen=True)
class Section:
    """What the judge is shown under one title, before its cut to `max_tokens` of the judge's tokens."""

    title: str
    text: str
    max_tokens: int


@dataclass(frozen=True)
class Ask:
    """One job's request to the judge: its suite's rubric and the sections it shows."""

    rubric: Rubric
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class JudgePrompt:
    """A judge prompt (with the primer where `primed`: the judge continues plain text) and its sections' cuts."""

    text: str
    primed: bool
    truncated_sections: list[dict[str, Any]] = field(default_factory=list)


def judge_prompts(
    judge: Backend, asks: Sequence[Ask], strict: bool, cache: PredictionCache | None, refresh: bool = False
) -> list[JudgePrompt]:
    """The judge prompts of `asks`, in order (`strict`: the retry's); taken from `cache` where it holds them
    (unless `refresh`), and stored there once rendered."""
    if judge.prompt_identity is None or cache is None:
        return [_render(judge, ask, strict) for ask in asks]
    keys = [_key(judge.prompt_identity, ask, strict) for ask in asks]
    stored = {} if refresh else cache.get_many(set(keys), PROMPTS)
    results: list[JudgePrompt] = []
    fresh: dict[str, dict[str, Any]] = {}
    for key, ask in zip(keys, asks):
        found = _from_entry(stored[key], cache) if key in stored else None
        if found is None:
            found = _render(judge, ask, strict)
            fresh[key] = asdict(found)
        results.append(found)
    if fresh:
        cache.put_many(fresh, PROMPTS)
    return results


def _key(identity: str, ask: Ask, strict: bool) -> str:
    """The cache key of a judge prompt: what it is rendered from (the module's docstring)."""
    return cache_key(
        identity,
        JUDGE_PROMPT,
        messages=judge_messages(ask.rubric, [(s.title, s.text) for s in ask.sections], strict=strict),
        primer=primer(ask.rubric),
        max_tokens=[s.max_tokens for s in ask.sections],
    )


def _render(judge: Backend, ask: Ask, strict: bool) -> JudgePrompt:
    """The judge prompt through the backend: each section cut to its budget in the judge's tokens (every cut
    recorded), the rubric's chat turns, and the primer for a judge that continues plain text."""
    shown, truncated = [], []
    for section in ask.sections:
        budget = PromptBudget(max_tokens=section.max_tokens, field="text", policy="head")
        cut, truncation = fit({"text": section.text}, budget, lambda f: judge.prompt_length(f["text"]))
        if truncation is not None:
            truncated.append({"section": section.title, **asdict(truncation)})
        shown.append((section.title, cut["text"]))
    prompt = judge.format_prompt(judge_messages(ask.rubric, shown, strict=strict))
    primed = judge.plain_prompts
    return JudgePrompt(f"{prompt}\n\n{primer(ask.rubric)}" if primed else prompt, primed, truncated)


def _from_entry(entry: dict[str, Any], cache: PredictionCache) -> JudgePrompt | None:
    """A cached judge prompt, or None (rendered again, and counted) when the entry is malformed."""
    text, primed, truncated = entry.get("text"), entry.get("primed"), entry.get("truncated_sections")
    if isinstance(text, str) and isinstance(primed, bool) and isinstance(truncated, list):
        if all(isinstance(cut, dict) for cut in truncated):
            return JudgePrompt(text, primed, truncated)
    cache.malformed += 1
    return None
