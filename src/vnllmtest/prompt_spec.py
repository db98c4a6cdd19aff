"""The prompt part of a suite's schema (template, few-shot examples, token budget, rendering limits),
below both the suite schema and the code that renders prompts, so neither depends on the other."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vnllmtest.quota import DEFAULT_MAX_CHARS, DEFAULT_MAX_SECONDS

MAX_TOKENS = 1 << 20  # above any model's context: a larger token count is a typo or an attack


class Strict(BaseModel):
    """A frozen schema section that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FewShot(Strict):
    k: int = Field(default=0, ge=0, le=100)
    seed: int = 0
    target: str


class PromptBudget(Strict):
    """A token budget for the rendered prompt: `field` (text or list of texts) is shortened to fit.

    `proportional`: every passage keeps the same leading share of its words;
    `head`: passages are kept in order, the one that overflows is cut and later ones dropped.
    """

    max_tokens: int = Field(ge=1, le=MAX_TOKENS)
    field: str
    policy: Literal["proportional", "head"] = "proportional"


class PromptLimits(Strict):
    """What rendering one prompt (all its turns) or one judge section may use: `max_chars` bounds every
    text or list a template builds and the output; `max_seconds` is CPU time."""

    max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=1_000, le=100_000_000)
    max_seconds: float = Field(default=DEFAULT_MAX_SECONDS, gt=0, le=600, allow_inf_nan=False)


class PromptSpec(Strict):
    system: str | None = None
    template: str
    fewshot: FewShot | None = None
    budget: PromptBudget | None = None
    limits: PromptLimits = PromptLimits()
