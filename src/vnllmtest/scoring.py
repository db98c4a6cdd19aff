"""Per-item scoring: the answer a prediction gives, its metric values, pass or miss, failure class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vnllmtest.loaders.base import Item
from vnllmtest.metrics import exact_match, extract_choice, rouge_l, rouge_n, token_f1
from vnllmtest.runner import Prediction
from vnllmtest.suite import SuiteSpec, TaskType

TextMetric = Callable[[str, Sequence[str], Sequence[str]], float]

TEXT_METRICS: dict[str, TextMetric] = {
    "exact_match": lambda p, refs, abst: exact_match(p, refs, abst),
    "f1": lambda p, refs, abst: token_f1(p, refs, abst),
    "rouge_1": lambda p, refs, abst: rouge_n(p, refs, 1, abst),
    "rouge_2": lambda p, refs, abst: rouge_n(p, refs, 2, abst),
    "rouge_l": lambda p, refs, abst: rouge_l(p, refs, abst),
}


@dataclass(frozen=True)
class ItemScore:
    status: str  # "passed", "missed" or "error"
    answer: str | None  # the extracted choice, or the scored answer text
    metrics: dict[str, float]
    failure_class: str | None = None  # why a miss or an error happened
    message: str | None = None
    generated_answer: str | None = None  # scoring.mode both: the option extracted from the generation


def score(spec: SuiteSpec, item: Item, prediction: Prediction, generated: Prediction | None = None) -> ItemScore:
    """Score `prediction`; for multiple choice in mode `both`, `generated` is the generate-mode answer."""
    failed = next((p for p in (prediction, generated) if p is not None and p.error is not None), None)
    if failed is not None:
        return ItemScore("error", None, {}, "model_error", failed.error)
    generated_answer = None
    if spec.task is TaskType.multiple_choice:
        answer = _chosen_label(item, prediction)
        metrics = {"accuracy": float(answer is not None and answer == item.references[0])}
        if generated is not None:
            generated_answer = extract_choice(generated.text, item.labels)
            metrics["accuracy_generate"] = float(generated_answer == item.references[0])
            metrics["mode_agreement"] = float(generated_answer is not None and generated_answer == answer)
    else:
        answer = prediction.text.strip()
        abstentions = spec.scoring.abstentions
        metrics = {name: TEXT_METRICS[name](answer, item.references, abstentions) for name in spec.metrics}
    if metrics[spec.item_pass.metric] >= spec.item_pass.min:
        return ItemScore("passed", answer, metrics, generated_answer=generated_answer)
    return ItemScore("missed", answer, metrics, _failure_class(spec, answer, prediction), None, generated_answer)


def _chosen_label(item: Item, prediction: Prediction) -> str | None:
    if prediction.choice_logprobs:
        scores = prediction.choice_logprobs
        return max(item.labels, key=lambda label: scores.get(label, float("-inf")))
    return extract_choice(prediction.text, item.labels)


def _failure_class(spec: SuiteSpec, answer: str | None, prediction: Prediction) -> str:
    if prediction.thinking_unterminated:
        return "thinking_unterminated"
    if spec.task is TaskType.multiple_choice and answer is None:
        return "extraction_failed"
    if prediction.finish_reason == "length":
        return "truncated"
    if prediction.mode == "generate" and not prediction.text.strip():
        return "empty_output"
    return "wrong"
