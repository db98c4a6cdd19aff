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


@pytest.mark.parametrize(
    ("only_first", "only_second", "expected"),
    [
        (0, 0, 1.0),  # no discordant pairs: no evidence either way
        (0, 5, 2 / 32),  # all five one way: 2 * (1/2)^5
        (1, 9, 2 * (1 + 10) / 1024),  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
        (3, 3, 1.0),  # a balanced split; the doubled tail is capped at 1
        (2, 8, 2 * (1 + 10 + 45) / 1024),
        (8, 2, 2 * (1 + 10 + 45) / 1024),  # symmetric in its arguments
    ],
)
def test_exact_mcnemar_on_small_tables(only_first, only_second, expected):
    from vnllmtest.metrics import mcnemar_exact

    assert mcnemar_exact(only_first, only_second) == pytest.approx(expected)


def test_mcnemar_rejects_negative_counts():
    from vnllmtest.metrics import mcnemar_exact

    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_paired_permutation_test_separates_a_shift_from_noise():
    from vnllmtest.metrics import paired_permutation_p

    rng = np.random.default_rng(11)
    assert paired_permutation_p(rng.normal(0.0, 1.0, 60), seed=1) > 0.05
    assert paired_permutation_p(rng.normal(1.0, 1.0, 60), seed=1) < 0.01
    assert paired_permutation_p([0.0] * 10) == 1.0  # no difference at all
    assert math.isnan(paired_permutation_p([]))
    # 2000 sign flips of ten equal differences: only the all-same signs are as extreme (p ~ 2/1024).
    assert paired_permutation_p([0.5] * 10, iterations=2000, seed=3) < 0.01


def test_clustered_permutation_test_counts_clusters_not_items():
    from vnllmtest.metrics import paired_permutation_p

    # four clusters of 25 identical differences: as items they look decisive, as clusters they are four signs.
    differences = np.repeat([0.4, 0.3, 0.5, -0.1], 25)
    clusters = np.repeat(["a", "b", "c", "d"], 25)
    assert paired_permutation_p(differences, seed=2) < 0.01
    assert paired_permutation_p(differences, clusters=clusters, seed=2) > 0.1


def test_clustered_bootstrap_keeps_its_coverage_where_the_plain_one_loses_it():
    rng = np.random.default_rng(7)
    truth, repetitions, covered, covered_plain = 0.5, 150, 0, 0
    for repetition in range(repetitions):
        cluster_means = np.clip(rng.normal(truth, 0.2, 20), 0, 1)  # 20 contexts of 10 questions each
        values = (rng.random((20, 10)) < cluster_means[:, None]).astype(float).ravel()
        clusters = np.repeat(np.arange(20), 10)
        low, high = bootstrap_ci(values, clusters=clusters, seed=repetition)
        plain_low, plain_high = bootstrap_ci(values, seed=repetition)
        covered += low <= truth <= high
        covered_plain += plain_low <= truth <= plain_high
    assert covered / repetitions >= 0.88
    assert covered_plain / repetitions < covered / repetitions - 0.1


def test_estimate_describes_itself():
    assert Estimate(33.333, 15.0, 55.55, 20).describe() == "33.3 [15.0, 55.5]"
    assert Estimate(-5.0, -12.5, 2.5, 40).describe(signed=True) == "-5.0 [-12.5, +2.5]"
    assert Estimate(float("nan"), float("nan"), float("nan"), 0).describe() == "n/a"
