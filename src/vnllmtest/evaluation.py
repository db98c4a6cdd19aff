"""Evaluates one (model, suite) group: render prompts, run them in batches, score every item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vnllmtest.backends.base import Backend, Request
from vnllmtest.budget import Truncation
from vnllmtest.loaders import BadRecord, Item, LoadedData
from vnllmtest.outcomes import ItemResult
from vnllmtest.prompts import PromptBuilder
from vnllmtest.rendering import NotRendered, render_prompts
from vnllmtest.runner import Prediction, Runner
from vnllmtest.scoring import score
from vnllmtest.suite import Suite, SuiteSpec
from vnllmtest.thinking import opens_thinking


@dataclass(frozen=True)
class ScoreJob:
    """One finished candidate answer for a model-graded scorer (the judge, or a model-graded metric)."""

    suite: Suite
    item: Item
    model: str  # the candidate's label
    output: str


def evaluate(
    backend: Backend,
    suite: Suite,
    data: LoadedData,
    entries: Sequence[Item | BadRecord],
    runner: Runner,
    max_new_tokens_cap: int | None = None,
    thinking: bool | None = None,
) -> dict[str, ItemResult]:
    """Results by item id for `entries` (a subset of the suite's selected records). `thinking`
    (from the command line) overrides the suite's `generation.thinking`; both default to off."""
    spec = suite.spec
    thinking = spec.generation.thinking if thinking is None else thinking
    max_new_tokens = min(spec.generation.max_new_tokens, max_new_tokens_cap or spec.generation.max_new_tokens)
    constants = prompt_constants(spec)
    builder = PromptBuilder(spec.prompt, data.pool, constants)
    results: dict[str, ItemResult] = {}
    requests: list[Request] = []
    answerable: list[tuple[Item, Truncation | None]] = []
    for entry in entries:
        if isinstance(entry, BadRecord):
            results[entry.id] = _error(suite, backend, entry, "bad_record", f"{entry.origin}: {entry.problem}")
    items = [entry for entry in entries if isinstance(entry, Item)]
    rendered = render_prompts(spec, backend, builder, constants, items, thinking, runner.cache, runner.refresh)
    for item, prompt in zip(items, rendered):
        if isinstance(prompt, NotRendered):
            message = f"{item.origin}: record {item.id}: {prompt.message}"
            results[item.id] = _error(suite, backend, item, prompt.failure_class, message)
            continue
        requests.append(
            Request(
                spec.name,
                item.id,
                prompt.prompt,
                item.labels,
                max_new_tokens,
                tuple(spec.generation.stop),
                spec.scoring.label_tokens,
                thinking or opens_thinking(prompt.prompt),  # a template that always opens the block thinks anyway
                prompt.source,
            )
        )
        answerable.append((item, prompt.truncation))
    description = f"{spec.name} × {backend.label}"
    mode = "loglikelihood" if spec.scoring.mode == "both" else spec.scoring.mode
    predictions = runner.run(backend, requests, mode, description=description)
    generated: list[Prediction | None] = [None] * len(requests)
    if spec.scoring.mode == "both":
        generated = list(runner.run(backend, requests, "generate", description=f"{description} (generate)"))
    for (item, truncation), request, prediction, generation in zip(answerable, requests, predictions, generated):
        results[item.id] = _scored(suite, backend, item, request, prediction, generation, truncation)
    return {entry.id: results[entry.id] for entry in entries}  # in the entries' order


def prompt_constants(spec: SuiteSpec) -> dict[str, Any]:
    """Suite-level template variables: the declared abstention phrases, so a prompt names them."""
    abstentions = spec.scoring.abstentions
    return {"abstention": abstentions[0] if abstentions else "", "abstentions": list(abstentions)}


def _scored(
    suite: Suite,
    backend: Backend,
    item: Item,
    request: Request,
    prediction: Prediction,
    generation: Prediction | None,
    truncation: Truncation | None,
) -> ItemResult:
    outcome = score(suite.spec, item, prediction, generation)
    shown = generation or prediction  # in mode "both" the generation is the text to show
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
        output=shown.text,
        answer=outcome.answer,
        metrics=outcome.metrics,
        mode=prediction.mode if generation is None else f"{prediction.mode}+{generation.mode}",
        finish_reason=shown.finish_reason,
        new_tokens=shown.new_tokens,
        cache_key=prediction.cache_key,
        cached=prediction.cached and (generation is None or generation.cached),
        choice_logprobs=prediction.choice_logprobs,
        loglik_answer=outcome.loglik_answer,
        thinking=shown.thinking,
        thinking_tokens=shown.thinking_tokens,
        truncation=asdict(truncation) if truncation else None,
        original_text=dict(item.original_text),
        tags=dict(item.tags),
        cluster=cluster_of(suite.spec, item),
    )


def _error(suite: Suite, backend: Backend, entry: Item | BadRecord, failure_class: str, message: str) -> ItemResult:
    return error_result(suite, backend.label, entry, failure_class, message)


def error_result(suite: Suite, model: str, entry: Item | BadRecord, failure_class: str, message: str) -> ItemResult:
    """The result of an item that could not be evaluated."""
    return ItemResult(
        suite.name,
        model,
        entry.id,
        "error",
        failure_class,
        message,
        entry.origin,
        tags=dict(entry.tags),
        cluster=cluster_of(suite.spec, entry),
    )


def cluster_of(spec: SuiteSpec, entry: Item | BadRecord) -> str | None:
    """The entry's cluster label under the suite's `cluster_by` (None: the item is its own cluster)."""
    if spec.cluster_by is None or isinstance(entry, BadRecord):
        return None
    return entry.cluster(spec.cluster_by)
