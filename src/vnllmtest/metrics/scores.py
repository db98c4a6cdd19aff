"""Reference-based scores over Vietnamese syllables (or another tokenisation, such as words): EM, token F1,
ROUGE-N, ROUGE-L, accuracy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from vnllmtest.metrics.text import is_abstention, normalize_text, syllables

_PairScore = Callable[[list[str], list[str]], float]
Tokenizer = Callable[[str], Sequence[str]]  # text to the units a score counts (syllables by default)
_NGrams = Counter[tuple[str, ...]]


def _best_over_references(
    prediction: str,
    references: Sequence[str] | str,
    abstentions: Iterable[str],
    pair_score: _PairScore,
    tokens: Tokenizer,
) -> float:
    """Max of pair_score over references, each text split by `tokens`; no references means the question is
    unanswerable. A declared abstention is the empty answer: right on an unanswerable question, 0 on any other.
    A prediction equal to a reference after normalisation is split as that reference is: a tokenisation that
    reads the original text (words, whose segmenter reads case) never parts two texts scored as equal."""
    refs = [references] if isinstance(references, str) else list(references)
    abstained = is_abstention(prediction, abstentions)
    if not refs:
        return float(abstained)
    predicted = [] if abstained else list(tokens(prediction))
    normalised = None if abstained or tokens is syllables else normalize_text(prediction)  # syllables: no need
    best = 0.0
    for ref in refs:
        reference = list(tokens(ref))
        same = normalised is not None and normalised == normalize_text(ref)
        best = max(best, pair_score(reference if same else predicted, reference))
    return best


def _f_measure(overlap: int, predicted_size: int, reference_size: int) -> float:
    """Balanced F-measure; 2PR/(P+R) simplifies to 2*overlap/(|pred|+|ref|)."""
    if overlap == 0:
        return 0.0
    return 2 * overlap / (predicted_size + reference_size)


def _counter_f_measure(predicted: _NGrams, reference: _NGrams) -> float:
    overlap = sum((predicted & reference).values())
    return _f_measure(overlap, sum(predicted.values()), sum(reference.values()))


def _ngrams(tokens: list[str], n: int) -> _NGrams:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _lcs_length(first: list[str], second: list[str]) -> int:
    """Longest common subsequence length in O(n*m) time and O(min(n, m)) memory."""
    longer, shorter = (first, second) if len(first) >= len(second) else (second, first)
    previous = [0] * (len(shorter) + 1)
    for token in longer:
        current = [0]
        for j, other in enumerate(shorter, start=1):
            current.append(
                previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1])
            )
        previous = current
    return previous[-1]


def _exact_pair(predicted: list[str], reference: list[str]) -> float:
    return float(predicted == reference)


def _f1_pair(predicted: list[str], reference: list[str]) -> float:
    if not predicted or not reference:
        return float(predicted == reference)
    return _counter_f_measure(_ngrams(predicted, 1), _ngrams(reference, 1))


def _rouge_l_pair(predicted: list[str], reference: list[str]) -> float:
    if not predicted or not reference:
        return 0.0
    return _f_measure(_lcs_length(predicted, reference), len(predicted), len(reference))


def exact_match(prediction: str, references: Sequence[str] | str, abstentions: Iterable[str] = ()) -> float:
    """1.0 when the normalised prediction equals a normalised reference."""
    return _best_over_references(prediction, references, abstentions, _exact_pair, syllables)


def token_f1(
    prediction: str, references: Sequence[str] | str, abstentions: Iterable[str] = (), tokens: Tokenizer = syllables
) -> float:
    """SQuAD-style F1 over syllables (or `tokens`) with multiset overlap."""
    return _best_over_references(prediction, references, abstentions, _f1_pair, tokens)


def rouge_n(
    prediction: str,
    references: Sequence[str] | str,
    n: int = 1,
    abstentions: Iterable[str] = (),
    tokens: Tokenizer = syllables,
) -> float:
    """ROUGE-N F-measure over syllable (or `tokens`) n-grams with clipped counts."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")

    def pair_score(predicted: list[str], reference: list[str]) -> float:
        predicted_ngrams, reference_ngrams = _ngrams(predicted, n), _ngrams(reference, n)
        if not predicted_ngrams or not reference_ngrams:
            return 0.0
        return _counter_f_measure(predicted_ngrams, reference_ngrams)

    return _best_over_references(prediction, references, abstentions, pair_score, tokens)


def rouge_l(
    prediction: str, references: Sequence[str] | str, abstentions: Iterable[str] = (), tokens: Tokenizer = syllables
) -> float:
    """ROUGE-L F-measure from the longest common subsequence of syllables (or `tokens`)."""
    return _best_over_references(prediction, references, abstentions, _rouge_l_pair, tokens)


def accuracy(predictions: Sequence[str | None], golds: Sequence[str]) -> float:
    """Fraction of positions where prediction == gold; NaN for no items."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} golds")
    if not golds:
        return float("nan")
    return sum(
        prediction == gold for prediction, gold in zip(predictions, golds, strict=True)
    ) / len(golds)
