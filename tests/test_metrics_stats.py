"""Tests for vnllmtest.metrics.stats."""

import math

import numpy as np
import pytest

from vnllmtest.metrics import Estimate, bootstrap_ci, estimate


def test_empty_input():
    assert all(math.isnan(bound) for bound in bootstrap_ci([]))
    result = estimate([])
    assert result.n == 0 and all(math.isnan(x) for x in (result.value, result.low, result.high))


def test_single_value_is_degenerate():
    assert bootstrap_ci([0.7]) == (0.7, 0.7)


def test_constant_is_degenerate():
    low, high = bootstrap_ci([0.25] * 50)
    assert low == high == pytest.approx(0.25)


def test_nan_is_rejected_with_count():
    with pytest.raises(ValueError, match="2 NaN"):
        bootstrap_ci([1.0, float("nan"), 0.0, float("nan")])
    with pytest.raises(ValueError, match="1 NaN"):
        estimate([float("nan")])


def test_invalid_options():
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 0.0], confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 0.0], iterations=0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 0.0], clusters=["a"])


def test_contains_the_mean_for_random_data():
    values = np.random.default_rng(1).normal(size=200)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high


def test_deterministic_for_a_seed():
    values = np.random.default_rng(2).random(100)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)
    clusters = np.arange(100) // 5
    assert bootstrap_ci(values, seed=7, clusters=clusters) == bootstrap_ci(
        values, seed=7, clusters=clusters
    )


def test_coverage_on_bernoulli_data():
    rng = np.random.default_rng(42)
    p, n, repetitions = 0.3, 100, 200
    covered = 0
    for repetition in range(repetitions):
        low, high = bootstrap_ci(rng.random(n) < p, seed=repetition)
        covered += low <= p <= high
    assert 0.90 <= covered / repetitions <= 0.99


def test_clusters_of_identical_items_widen_the_interval():
    cluster_values = np.random.default_rng(5).random(10)
    values = np.repeat(cluster_values, 10)
    clusters = np.repeat([f"doc{i}" for i in range(10)], 10)
    low, high = bootstrap_ci(values)
    clustered_low, clustered_high = bootstrap_ci(values, clusters=clusters)
    assert clustered_high - clustered_low > 2 * (high - low)


def test_clustered_mean_is_over_items():
    # clusters a = [1, 1, 1], b = [0]; two draws: aa -> 1 (p 1/4), ab or ba -> 3/4 (p 1/2),
    # bb -> 0 (p 1/4). The 30% and 70% quantiles fall in the 3/4 mass; a mean of cluster
    # means would give 1/2 instead.
    values, clusters = [1.0, 1.0, 1.0, 0.0], ["a", "a", "a", "b"]
    assert bootstrap_ci(values, clusters=clusters, confidence=0.4) == (0.75, 0.75)
    assert bootstrap_ci([1.0, 1.0, 0.0], clusters=["x", "x", "x"]) == pytest.approx((2 / 3, 2 / 3))


def test_estimate_scales_value_and_bounds():
    values = [1.0, 0.0, 1.0, 1.0]
    result = estimate(values, scale=100, seed=4)
    low, high = bootstrap_ci(values, seed=4)
    assert result == Estimate(75.0, low * 100, high * 100, 4)
    assert result.low <= result.value <= result.high


def test_spearman_ranks_with_ties_and_edge_cases():
    from vnllmtest.metrics import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))  # ties take their average rank
    assert math.isnan(spearman([5, 5, 5], [1, 2, 3])) and math.isnan(spearman([1], [2]))
