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
    and items only the second got right (a binomial test of the split against 1/2)."""
    if only_first < 0 or only_second < 0:
        raise ValueError("discordant counts cannot be negative")
    trials = only_first + only_second
    if trials == 0:
        return 1.0
    tail = sum(math.comb(trials, k) for k in range(min(only_first, only_second) + 1)) / 2.0**trials
    return min(1.0, 2.0 * tail)


def paired_permutation_p(
    differences: Sequence[float],
    *,
    iterations: int = 1000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
) -> float:
    """Two-sided p-value of a zero mean paired difference: a sign-flip permutation test that flips
    whole clusters together when they are given."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    data = _as_array(differences)
    if data.size == 0:
        return _NAN
    sums, _ = _cluster_totals(data, clusters)
    observed = abs(sums.sum())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(iterations, sums.size))
    extreme = int((np.abs(signs @ sums) >= observed - 1e-12 * max(1.0, observed)).sum())
    return (extreme + 1) / (iterations + 1)


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
