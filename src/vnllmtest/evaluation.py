"""Evaluates one (model, suite) group: render prompts, run them in batches, score every item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vnllmtest.backends.base import Backend, Request
from vnllmtest.loaders import BadRecord, Item, LoadedData
from vnllmtest.prompts import PromptBuilder, PromptError
from vnllmtest.runner import Prediction, Runner
from vnllmtest.scoring import score
from vnllmtest.suite import Suite


@dataclass(frozen=True)
class ItemResult:
    """Everything known about one item of one model: the line it gets in items.jsonl."""

    suite: str
    model: str
    id: str
    status: str  # "passed", "missed" or "error"
    failure_class: str | None
    message: str | None
    origin: str
    prompt: str | None = None
    references: list[str] = field(default_factory=list)
    output: str | None = None
    answer: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    mode: str | None = None
    finish_reason: str | None = None
    new_tokens: int = 0
    cache_key: str | None = None
    cached: bool = False
    choice_logprobs: dict[str, float] | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    backend: Backend,
    suite: Suite,
    data: LoadedData,
    entries: Sequence[Item | BadRecord],
    runner: Runner,
    max_new_tokens_cap: int | None = None,
) -> dict[str, ItemResult]:
    """Results by item id for `entries` (a subset of the suite's selected records)."""
    spec = suite.spec
    max_new_tokens = min(spec.generation.max_new_tokens, max_new_tokens_cap or spec.generation.max_new_tokens)
    builder = PromptBuilder(spec.prompt, data.pool)
    results: dict[str, ItemResult] = {}
    requests: list[Request] = []
    answerable: list[Item] = []
    for entry in entries:
        if isinstance(entry, BadRecord):
            results[entry.id] = _error(suite, backend, entry.id, entry.origin, "bad_record", f"{entry.origin}: {entry.problem}")
            continue
        try:
            prompt = backend.format_prompt(builder.messages(entry))
        except PromptError as exc:
            results[entry.id] = _error(suite, backend, entry.id, entry.origin, "bad_prompt", f"{entry.origin}: record {entry.id}: {exc}")
            continue
        requests.append(
            Request(spec.name, entry.id, prompt, entry.labels, max_new_tokens, tuple(spec.generation.stop))
        )
        answerable.append(entry)
    predictions = runner.run(backend, requests, spec.scoring.mode, description=f"{spec.name} × {backend.label}")
    for item, request, prediction in zip(answerable, requests, predictions):
        results[item.id] = _scored(suite, backend, item, request, prediction)
    return results


def _scored(suite: Suite, backend: Backend, item: Item, request: Request, prediction: Prediction) -> ItemResult:
    outcome = score(suite.spec, item, prediction)
    return ItemResult(
        suite=suite.name,
        model=backend.label,
        id=item.id,
        status=outcome.status,
        failure_class=outcome.failure_class,
        message=outcome.message,
        origin=item.origin,
        prompt=request.prompt,
        references=list(item.references),
        output=prediction.text,
        answer=outcome.answer,
        metrics=outcome.metrics,
        mode=prediction.mode,
        finish_reason=prediction.finish_reason,
        new_tokens=prediction.new_tokens,
        cache_key=prediction.cache_key,
        cached=prediction.cached,
        choice_logprobs=prediction.choice_logprobs,
        tags=dict(item.tags),
    )


def _error(suite: Suite, backend: Backend, item_id: str, origin: str, failure_class: str, message: str) -> ItemResult:
    return ItemResult(suite.name, backend.label, item_id, "error", failure_class, message, origin)
