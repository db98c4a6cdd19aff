"""Vietnamese-aware scoring: text normalisation, reference scores, choice extraction, statistics."""

from vnllmtest.metrics.choice import ChoiceReading, extract_choice, read_choice
from vnllmtest.metrics.scores import accuracy, exact_match, rouge_l, rouge_n, token_f1
from vnllmtest.metrics.stats import (
    Estimate,
    PermutationResult,
    bootstrap_ci,
    estimate,
    holm_adjust,
    mcnemar_exact,
    paired_permutation_p,
    spearman,
)
from vnllmtest.metrics.text import is_abstention, normalize_text, syllables

__all__ = [
    "ChoiceReading",
    "Estimate",
    "PermutationResult",
    "accuracy",
    "bootstrap_ci",
    "estimate",
    "exact_match",
    "extract_choice",
    "holm_adjust",
    "is_abstention",
    "mcnemar_exact",
    "normalize_text",
    "paired_permutation_p",
    "read_choice",
    "rouge_l",
    "rouge_n",
    "spearman",
    "syllables",
    "token_f1",
]
