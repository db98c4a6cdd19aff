"""What each metric name means: its kind (which paired test fits it), its scale, and the version of
its definition. A metric's name always means one computation; when that computation changes, its
version goes up, and runs made under another version are not compared on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JUDGE_PREFIX = "judge_"  # judge metrics stay on the rubric's scale; the others are reported in points
JUDGE_SCORE = "judge_score"  # the judge's holistic score, where the rubric asks for one
JUDGE_OVERALL = "judge_overall"  # the weighted mean of the rubric's criteria
VERDICT_COVERAGE = "verdict_coverage"  # share of items with a readable judge verdict
PERCENT = 100.0  # item metrics lie in [0, 1]; aggregates are reported in points (0-100)


@dataclass(frozen=True)
class MetricInfo:
    """`binary` metrics are 0 or 1 per item (paired by McNemar's test when items are independent);
    `continuous` ones take any value (paired by a sign-flip permutation test)."""

    kind: Literal["binary", "continuous"]
    scale: Literal["points", "rubric"]
    version: int
    summary: str


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("binary", "points", 2, "generate, then extract the chosen option letter (the published protocol)"),
    "accuracy_loglik": MetricInfo("binary", "points", 1, "the option letter most likely as the next token (one forward pass)"),
    "mode_agreement": MetricInfo("binary", "points", 2, "both modes chose the same option"),
    "exact_match": MetricInfo("binary", "points", 2, "normalised answer equals a gold answer"),
    "f1": MetricInfo("continuous", "points", 2, "syllable-overlap F1, best over the gold answers"),
    "rouge_1": MetricInfo("continuous", "points", 2, "ROUGE-1 F1 over syllables, best over the references"),
    "rouge_2": MetricInfo("continuous", "points", 2, "ROUGE-2 F1 over syllables, best over the references"),
    "rouge_l": MetricInfo("continuous", "points", 2, "ROUGE-L F1 over syllables, best over the references"),
    VERDICT_COVERAGE: MetricInfo("binary", "points", 1, "the first judge gave a readable verdict"),
    JUDGE_SCORE: MetricInfo("continuous", "rubric", 1, "the judge's holistic score"),
    JUDGE_OVERALL: MetricInfo("continuous", "rubric", 2, "weighted mean of the judge's criterion scores"),
}
_JUDGE_CRITERION = MetricInfo("continuous", "rubric", 2, "the judge's score for one rubric criterion")


def metric_info(name: str) -> MetricInfo:
    """The definition behind a metric name; every `judge_<criterion>` shares one."""
    if name in METRICS:
        return METRICS[name]
    if name.startswith(JUDGE_PREFIX):
        return _JUDGE_CRITERION
    raise KeyError(f"unknown metric '{name}'; known: {', '.join(sorted(METRICS))}, judge_<criterion>")


def is_known_metric(name: str) -> bool:
    """Whether the name has a definition here (stored runs may hold names that no longer exist)."""
    return name in METRICS or name.startswith(JUDGE_PREFIX)


def scale_of(name: str) -> float:
    """The factor from item values to reported values: points for [0, 1] metrics, 1 for judge scores."""
    return PERCENT if metric_info(name).scale == "points" else 1.0


def definitions(names: list[str]) -> dict[str, int]:
    """The definition version of each metric, as stored in summary.json."""
    return {name: metric_info(name).version for name in names}
