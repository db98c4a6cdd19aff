"""What each built-in metric name means: how it is computed, its kind (which paired test fits it),
its scale and the version of its definition. A metric's name always means one computation; when that
computation changes, its version goes up, and runs made under another version are not compared on
it. Metrics of installed packages come through vnllmtest.extensions.METRICS."""

from __future__ import annotations

import functools
import math

from vnllmtest.clipping import described
from vnllmtest.extensions import METRICS, ExtensionError, Metric
from vnllmtest.metrics.scores import exact_match, rouge_l, rouge_n, token_f1
from vnllmtest.metrics.words import SEGMENTER_INSTALL, SEGMENTER_MODULE, words

JUDGE_PREFIX = "judge_"  # judge metrics stay on the rubric's scale; the others are reported in points
JUDGE_SCORE = "judge_score"  # the judge's holistic score, where the rubric asks for one
JUDGE_OVERALL = "judge_overall"  # the weighted mean of the rubric's criteria
VERDICT_COVERAGE = "verdict_coverage"  # share of items with a readable judge verdict
PERCENT = 100.0  # item metrics lie in [0, 1]; aggregates are reported in points (0-100)
CHOICE_METRICS = ("accuracy", "accuracy_loglik", "mode_agreement")  # what multiple-choice scoring computes

ACCURACY = Metric(
    "binary", "points", 2, "generate, then extract the chosen option letter (the published protocol)",
    choice_modes=("generate", "both"),
)
ACCURACY_LOGLIK = Metric(
    "binary", "points", 1, "the option letter most likely as the next token (one forward pass)",
    choice_modes=("loglikelihood", "both"),
)
MODE_AGREEMENT = Metric("binary", "points", 2, "both modes chose the same option", choice_modes=("both",))
EXACT_MATCH = Metric("binary", "points", 2, "normalised answer equals a gold answer", compute=exact_match)
F1 = Metric("continuous", "points", 2, "syllable-overlap F1, best over the gold answers", compute=token_f1)
ROUGE_1 = Metric(
    "continuous", "points", 2, "ROUGE-1 F1 over syllables, best over the references",
    compute=lambda answer, references, abstentions: rouge_n(answer, references, 1, abstentions),
)
ROUGE_2 = Metric(
    "continuous", "points", 2, "ROUGE-2 F1 over syllables, best over the references",
    compute=lambda answer, references, abstentions: rouge_n(answer, references, 2, abstentions),
)
ROUGE_L = Metric("continuous", "points", 2, "ROUGE-L F1 over syllables, best over the references", compute=rouge_l)
# The same scores over words (metrics/words.py), from the `words` extra. Word-level exact match would equal
# exact_match: both compare the whole normalised answer.
_WORDS = {"requires": (SEGMENTER_MODULE,), "install": SEGMENTER_INSTALL}
F1_WORD = Metric(
    "continuous", "points", 1, "overlap F1 over words (underthesea segmentation), best over the gold answers",
    compute=functools.partial(token_f1, tokens=words), **_WORDS,
)
ROUGE_1_WORD = Metric(
    "continuous", "points", 1, "ROUGE-1 F1 over words (underthesea segmentation), best over the references",
    compute=lambda answer, references, abstentions: rouge_n(answer, references, 1, abstentions, tokens=words),
    **_WORDS,
)
ROUGE_2_WORD = Metric(
    "continuous", "points", 1, "ROUGE-2 F1 over words (underthesea segmentation), best over the references",
    compute=lambda answer, references, abstentions: rouge_n(answer, references, 2, abstentions, tokens=words),
    **_WORDS,
)
ROUGE_L_WORD = Metric(
    "continuous", "points", 1, "ROUGE-L F1 over words (underthesea segmentation), best over the references",
    compute=functools.partial(rouge_l, tokens=words), **_WORDS,
)
VERDICT_COVERAGE_METRIC = Metric("binary", "points", 1, "the first judge gave a readable verdict")
JUDGE_SCORE_METRIC = Metric("continuous", "rubric", 1, "the judge's holistic score")
JUDGE_OVERALL_METRIC = Metric("continuous", "rubric", 2, "weighted mean of the judge's criterion scores")
JUDGE_CRITERION = Metric("continuous", "rubric", 2, "the judge's score for one rubric criterion")


def metric_info(name: str) -> Metric:
    """The definition behind a metric name; every `judge_<criterion>` shares one. KeyError when unknown."""
    if name in METRICS:
        return METRICS.get(name)
    if name.startswith(JUDGE_PREFIX):
        return JUDGE_CRITERION
    raise KeyError(f"unknown metric '{name}'; known: {', '.join(METRICS.names())}, judge_<criterion>")


def checked_value(name: str, value: object) -> float:
    """An item's value of metric `name` from code vnllmtest does not own (an installed metric): a number
    in [0, 1]; ValueError naming the metric otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"metric '{name}' gave {described(value, 80)}, not a number in [0, 1]")
    return float(value)


def is_known_metric(name: str) -> bool:
    """Whether the name has a definition (stored runs may hold names that no longer exist)."""
    try:
        metric_info(name)
    except (KeyError, ExtensionError):
        return False
    return True


def scale_of(name: str) -> float:
    """The factor from item values to reported values: points for [0, 1] metrics, 1 for judge scores."""
    return PERCENT if metric_info(name).scale == "points" else 1.0


def definitions(names: list[str]) -> dict[str, int]:
    """The version of each metric's definition, as stored in summary.json."""
    return {name: metric_info(name).version for name in names}
