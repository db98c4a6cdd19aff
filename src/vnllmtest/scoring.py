"""Per-item scoring: the answer a prediction gives, its metric values, pass or miss, failure class."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vnllmtest.loaders.base import Item
from vnllmtest.clipping import shown
from vnllmtest.metric_table import checked_value, metric_info
from vnllmtest.metrics import ChoiceReading, read_choice
from vnllmtest.runner import Prediction
from vnllmtest.suite import SuiteSpec, TaskType


class MetricFailed(Exception):
    """A metric raised, or gave something other than a number in [0, 1], for one item."""


@dataclass(frozen=True)
class ItemScore:
    status: str  # "passed", "missed" or "error"
    answer: str | None  # the chosen option (generate+extract where it ran), or the scored answer text
    metrics: dict[str, float]  # a metric the item could not be scored on is absent (counted as unscored)
    failure_class: str | None = None  # why a miss or an error happened
    message: str | None = None
    loglik_answer: str | None = None  # multiple choice: the option the log-probabilities chose


def score(spec: SuiteSpec, item: Item, prediction: Prediction, generated: Prediction | None = None) -> ItemScore:
    """Score `prediction` (in the suite's mode); in multiple-choice mode `both`, `prediction` holds the
    log-probabilities and `generated` the generation."""
    failed = next((p for p in (prediction, generated) if p is not None and p.error is not None), None)
    if failed is not None:
        return ItemScore("error", None, {}, "model_error", failed.error)
    if spec.task is TaskType.multiple_choice:
        return _score_choice(spec, item, prediction, generated)
    answer = prediction.text.strip()
    try:
        metrics = _answer_metrics(spec, item, answer)
    except MetricFailed as exc:  # an installed metric's bug fails this item, not the whole group
        return ItemScore("error", answer, {}, "metric_failed", str(exc))
    if metrics[spec.item_pass.metric] >= spec.item_pass.min:
        return ItemScore("passed", answer, metrics)
    return ItemScore("missed", answer, metrics, _failure_class(prediction))


def _answer_metrics(spec: SuiteSpec, item: Item, answer: str) -> dict[str, float]:
    """The declared metrics computed from the answer text (model-graded ones are scored later)."""
    metrics = {}
    for name in spec.metrics:
        compute = metric_info(name).compute
        if compute is not None:
            try:
                value = compute(answer, item.references, spec.scoring.abstentions)
            except Exception as exc:
                raise MetricFailed(f"metric '{name}' failed: {type(exc).__name__}: {shown(str(exc), 1000)}") from None
            try:
                metrics[name] = checked_value(name, value)
            except ValueError as exc:
                raise MetricFailed(str(exc)) from None
    return metrics


def _score_choice(spec: SuiteSpec, item: Item, prediction: Prediction, generated: Prediction | None) -> ItemScore:
    """`accuracy` from the generation's extracted letter, `accuracy_loglik` from the log-probabilities,
    `mode_agreement` when both exist; a mode that gave nothing readable leaves its metric out."""
    generation = generated if generated is not None else prediction if prediction.mode == "generate" else None
    loglik = prediction if prediction.mode == "loglikelihood" else None
    reading = read_choice(generation.text, item.labels) if generation is not None else None
    if spec.answers_hidden:
        return _hidden_choice(item, reading, generation, loglik)
    gold = item.references[0]
    metrics: dict[str, float] = {}
    if reading is not None:
        metrics["accuracy"] = float(reading.label == gold)
    loglik_answer, unreadable = _loglik_choice(item, loglik) if loglik is not None else (None, "not run")
    if unreadable is None:
        metrics["accuracy_loglik"] = float(loglik_answer == gold)
        if reading is not None:
            metrics["mode_agreement"] = float(reading.label is not None and reading.label == loglik_answer)
    answer = reading.label if reading is not None else loglik_answer
    pass_metric = spec.item_pass.metric
    if pass_metric not in metrics:
        message = f"{pass_metric} cannot be scored: {unreadable}"
        return ItemScore("error", answer, metrics, "unscored", message, loglik_answer)
    if metrics[pass_metric] >= spec.item_pass.min:
        return ItemScore("passed", answer, metrics, loglik_answer=loglik_answer)
    if pass_metric == "accuracy":
        failure_class = _choice_failure_class(reading, generation)
    else:
        failure_class = "ambiguous" if loglik_answer is None else "wrong"
    return ItemScore("missed", answer, metrics, failure_class, loglik_answer=loglik_answer)


def _hidden_choice(
    item: Item, reading: ChoiceReading | None, generation: Prediction | None, loglik: Prediction | None
) -> ItemScore:
    """A question whose answer is hidden (a leaderboard submission): the chosen option, nothing scored. An
    item passes when the model chose an option, and is missed (with why) when none could be read."""
    if reading is not None and generation is not None:
        if reading.label is not None:
            return ItemScore("passed", reading.label, {})
        failure_class = _choice_failure_class(reading, generation)
        return ItemScore("missed", None, {}, failure_class, "no option letter in the reply")
    assert loglik is not None  # a submission runs one mode: generate or loglikelihood
    answer, unreadable = _loglik_choice(item, loglik)
    if unreadable is not None:
        return ItemScore("error", None, {}, "unscored", f"no option chosen: {unreadable}")
    if answer is None:
        return ItemScore("missed", None, {}, "ambiguous", "options tied for the highest log-probability")
    return ItemScore("passed", answer, {}, loglik_answer=answer)


def _loglik_choice(item: Item, prediction: Prediction) -> tuple[str | None, str | None]:
    """(the option with the highest log-probability, None) — the option is None on a tie at the top —
    or (None, why the log-probabilities cannot be read). Missing or NaN scores never become an answer."""
    scores = prediction.choice_logprobs
    if not scores:
        return None, "the backend returned no option log-probabilities"
    values = {label: scores.get(label, -math.inf) for label in item.labels}
    broken = [label for label, value in values.items() if math.isnan(value) or value == math.inf]
    if broken:
        return None, f"the log-probability of option {broken[0]} is {values[broken[0]]}"
    best = max(values.values())
    if best == -math.inf:
        return None, "no option label among the returned log-probabilities"
    winners = [label for label, value in values.items() if value == best]
    return (winners[0] if len(winners) == 1 else None), None


def _choice_failure_class(reading: ChoiceReading, generation: Prediction) -> str:
    if generation.thinking_unterminated:
        return "thinking_unterminated"
    if reading.ambiguous:
        return "ambiguous"
    if reading.label is None:
        return "extraction_failed"
    return _failure_class(generation)


def _failure_class(prediction: Prediction) -> str:
    if prediction.thinking_unterminated:
        return "thinking_unterminated"
    if prediction.finish_reason == "length":
        return "truncated"
    if prediction.mode == "generate" and not prediction.text.strip():
        return "empty_output"
    return "wrong"
