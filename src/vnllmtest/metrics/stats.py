"""Point estimates with percentile-bootstrap confidence intervals, and paired significance tests."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval, on the caller's scale, over n items."""

    value: float
    low: float
    high: float
    n: int

    def describe(self, signed: bool = False) -> str:
        """`33.3 [15.0, 55.0]` (with signs for differences), or `n/a` when nothing was measured."""
        if self.n == 0 or math.isnan(self.value):
            return "n/a"
        form = "+.1f" if signed else ".1f"
        return f"{self.value:{form}} [{self.low:{form}}, {self.high:{form}}]"


def _as_array(values: Sequence[float]) -> np.ndarray:
    """Values as a float array; NaN is rejected because its meaning is the caller's decision."""
    data = np.asarray(values, dtype=float).reshape(-1)
    nan_count = int(np.isnan(data).sum())
    if nan_count:
        raise ValueError(f"{nan_count} NaN value(s) in input; drop or replace them first")
    return data


def _cluster_totals(
    data: np.ndarray, clusters: Sequence[Hashable] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums and item counts; without clusters every item is its own cluster."""
    if clusters is None:
        return data, np.ones_like(data)
    if len(clusters) != data.size:
        raise ValueError(f"{len(clusters)} cluster keys for {data.size} values")
    codes: dict[Hashable, int] = {}
    index = np.array([codes.setdefault(key, len(codes)) for key in clusters])
    return np.bincount(index, weights=data), np.bincount(index).astype(float)


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    iterations: int = 1000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean, resampling whole clusters when they are given."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    data = _as_array(values)
    if data.size == 0:
        return _NAN, _NAN
    sums, counts = _cluster_totals(data, clusters)
    draws = np.random.default_rng(seed).integers(0, sums.size, size=(iterations, sums.size))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def estimate(values: Sequence[float], *, scale: float = 1.0, **bootstrap_options: Any) -> Estimate:
    """Mean and bootstrap CI (options as in bootstrap_ci), all multiplied by scale."""
    data = _as_array(values)
    if data.size == 0:
        return Estimate(_NAN, _NAN, _NAN, 0)
    low, high = bootstrap_ci(data, **bootstrap_options)
    return Estimate(float(data.mean()) * scale, low * scale, high * scale, int(data.size))


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: items only the first run got right
    and items only the second got right (a binomial test of the split against 1/2). Summed in exact
    integers, so any number of pairs works; the result is exact to double precision."""
    if only_first < 0 or only_second < 0:
        raise ValueError("discordant counts cannot be negative")
    trials = only_first + only_second
    if trials == 0:
        return 1.0
    return min(1.0, 2 * _lower_binomial_tail(trials, min(only_first, only_second)) / 2**trials)


def _lower_binomial_tail(trials: int, last: int) -> int:
    """sum(comb(trials, k) for k <= last), for last <= trials / 2, to a relative error below 2^-64.
    The terms shrink going down from `last` at least geometrically (ratio k / (trials - k + 1)), so the
    sum stops once everything left is provably below 2^-64 of it."""
    term = total = math.comb(trials, last)
    for k in range(last, 0, -1):
        term = term * k // (trials - k + 1)  # comb(trials, k - 1), exactly
        total += term
        # what is left is at most term * r / (1 - r) with r = (k - 1) / (trials - k + 2)
        if (term * (k - 1)) << 64 < total * (trials - 2 * k + 3):
            break
    return total


@dataclass(frozen=True)
class PermutationResult:
    """A sign-flip permutation p-value: exact (`draws` 0, `error` 0.0) when every sign pattern was
    enumerated, else estimated from `draws` random patterns with Monte Carlo standard error `error`."""

    p_value: float
    error: float
    draws: int


EXACT_UNITS = 16  # up to this many units (items or clusters) every sign pattern is enumerated
PERMUTATION_DRAWS = 10_000  # random sign patterns beyond EXACT_UNITS
_BLOCK = 1 << 22  # sign patterns x units handled at once, to bound memory


def paired_permutation_p(
    differences: Sequence[float],
    *,
    draws: int = PERMUTATION_DRAWS,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
) -> PermutationResult:
    """Two-sided test of a zero mean paired difference by flipping the signs of whole units (items,
    or clusters when they are given): all 2^units patterns up to EXACT_UNITS units, else `draws`
    random ones. NaN for no differences."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    data = _as_array(differences)
    if data.size == 0:
        return PermutationResult(_NAN, 0.0, 0)
    sums, _ = _cluster_totals(data, clusters)
    total = float(sums.sum())
    threshold = abs(total) - 1e-9 * max(1.0, float(np.abs(sums).sum()))  # ties in floating point count
    if sums.size <= EXACT_UNITS:
        patterns = np.arange(1 << sums.size)[:, None] >> np.arange(sums.size) & 1
        extreme = int((np.abs(total - 2.0 * (patterns @ sums)) >= threshold).sum())
        return PermutationResult(extreme / patterns.shape[0], 0.0, 0)
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK // sums.size)
    extreme = 0
    for start in range(0, draws, rows):
        flipped = rng.random((min(rows, draws - start), sums.size)) < 0.5
        extreme += int((np.abs(total - 2.0 * (flipped @ sums)) >= threshold).sum())
    p_value = (extreme + 1) / (draws + 1)
    return PermutationResult(p_value, math.sqrt(p_value * (1.0 - p_value) / draws), draws)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for testing them together, in the order given: the k-th
    smallest of m becomes the largest (m - j + 1) * p_(j) over j <= k, at most 1. Rejecting where the
    adjusted p is below alpha keeps the chance of any false rejection at most alpha."""
    data = _as_array(p_values)
    if np.any((data < 0.0) | (data > 1.0)):
        raise ValueError(f"p-values must be in [0, 1], got {data[(data < 0.0) | (data > 1.0)][0]!r}")
    order = np.argsort(data, kind="stable")
    scaled = data[order] * np.arange(data.size, 0, -1)
    adjusted = np.empty_like(data)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return [float(value) for value in adjusted]


def spearman(first: Sequence[float], second: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their average rank); NaN when either side is constant
    or there are fewer than two pairs."""
    if len(first) != len(second):
        raise ValueError("spearman needs two sequences of the same length")
    if len(first) < 2:
        return math.nan
    ranks = [_average_ranks(_as_array(values)) for values in (first, second)]
    if any(float(np.std(r)) == 0.0 for r in ranks):
        return math.nan
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks
