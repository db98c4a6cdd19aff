"""Tests for vnllmtest.metrics.stats."""

import math

import numpy as np
import pytest

from vnllmtest.metrics import Estimate, PermutationResult, bootstrap_ci, estimate


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
    assert paired_permutation_p(rng.normal(0.0, 1.0, 60), seed=1).p_value > 0.05
    assert paired_permutation_p(rng.normal(1.0, 1.0, 60), seed=1).p_value < 0.01
    assert paired_permutation_p([0.0] * 10).p_value == 1.0  # no difference at all
    assert math.isnan(paired_permutation_p([]).p_value)
    # ten equal differences: only the two all-same sign patterns are as extreme, exactly 2/1024.
    assert paired_permutation_p([0.5] * 10) == PermutationResult(2 / 1024, 0.0, 0)


def test_clustered_permutation_test_counts_clusters_not_items():
    from vnllmtest.metrics import paired_permutation_p

    # four clusters of 25 identical differences: as items they look decisive, as clusters they are four signs.
    differences = np.repeat([0.4, 0.3, 0.5, -0.1], 25)
    clusters = np.repeat(["a", "b", "c", "d"], 25)
    assert paired_permutation_p(differences, seed=2).p_value < 0.01
    # cluster sums 10, 7.5, 12.5, -2.5 (observed 27.5): of the 16 sign patterns only the observed one,
    # the one with all four positive (32.5) and their mirrors are as extreme, so p = 4/16 exactly.
    assert paired_permutation_p(differences, clusters=clusters, seed=2) == PermutationResult(0.25, 0.0, 0)


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


def exact_mcnemar_by_full_sum(only_first: int, only_second: int) -> float:
    """An independent reference: every binomial term summed as an exact fraction."""
    from fractions import Fraction

    trials, last = only_first + only_second, min(only_first, only_second)
    term = total = 1
    for k in range(last):
        term = term * (trials - k) // (k + 1)
        total += term
    return min(1.0, float(Fraction(2 * total, 2**trials)))


@pytest.mark.parametrize(
    ("only_first", "only_second", "expected"),
    [
        # computed once with exact_mcnemar_by_full_sum; 2**trials no longer fits a float beyond 1,023 pairs
        (49_500, 50_500, 0.0015823598788515956),  # 100,000 discordant pairs, a 1-point split
        (50_500, 49_500, 0.0015823598788515956),
        (49_900, 50_100, 0.5291572940801932),
        (45_000, 55_000, 8.600341645714696e-220),  # deep in the tail, still a normal float
        (20_000, 20_400, 0.04713209701042844),
        (50_000, 50_000, 1.0),
        (600, 1400, 2.303974555991512e-73),
        (511, 513, 0.9750721941070205),
    ],
)
def test_mcnemar_is_exact_for_very_large_counts(only_first, only_second, expected):
    from vnllmtest.metrics import mcnemar_exact

    assert mcnemar_exact(only_first, only_second) == pytest.approx(expected, rel=1e-14)


def test_mcnemar_powers_of_two_and_underflow():
    from vnllmtest.metrics import mcnemar_exact

    assert mcnemar_exact(0, 1000) == 2.0**-999  # 2 * (1/2)^1000: exact in binary
    assert mcnemar_exact(1, 1023) == 1025 * 2.0**-1023  # 2 * (1 + 1024) / 2^1024
    assert mcnemar_exact(3, 30_000) == 0.0  # below the smallest float: 0.0, not an overflow


@pytest.mark.parametrize(
    ("only_first", "only_second"),
    [(40, 1000), (333, 367), (1023, 1025), (700, 2100), (1499, 1501), (12, 5000)],
)
def test_mcnemar_matches_the_full_exact_sum(only_first, only_second):
    from vnllmtest.metrics import mcnemar_exact

    expected = exact_mcnemar_by_full_sum(only_first, only_second)
    assert mcnemar_exact(only_first, only_second) == pytest.approx(expected, rel=1e-14, abs=1e-320)


def test_mcnemar_agrees_with_the_normal_approximation_when_large():
    from vnllmtest.metrics import mcnemar_exact

    # a 51/49 split of 40,000 pairs: z = (20,400 - 20,000 - 0.5) / 100 with continuity correction
    z = (20_400 - 20_000 - 0.5) / math.sqrt(40_000 / 4)
    assert mcnemar_exact(19_600, 20_400) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.01)


def enumerate_sign_flips(sums: list[float]) -> float:
    """An independent reference: the share of all sign patterns at least as extreme, in plain Python."""
    import itertools

    observed = abs(sum(sums))
    patterns = list(itertools.product((1, -1), repeat=len(sums)))
    extreme = sum(1 for signs in patterns if abs(sum(s * v for s, v in zip(signs, sums))) >= observed - 1e-9)
    return extreme / len(patterns)


@pytest.mark.parametrize("units", [1, 2, 5, 9, 12, 16])
def test_permutation_enumerates_every_sign_pattern_up_to_16_units(units):
    from vnllmtest.metrics import paired_permutation_p

    differences = list(np.round(np.random.default_rng(units).normal(0.15, 0.3, units), 2))
    found = paired_permutation_p(differences, seed=units)
    assert found == PermutationResult(enumerate_sign_flips(differences), 0.0, 0)
    assert paired_permutation_p(differences, seed=units + 1) == found  # exact: no seed dependence


def test_permutation_by_cluster_enumerates_16_clusters_and_draws_beyond():
    from vnllmtest.metrics import paired_permutation_p

    rng = np.random.default_rng(3)
    per_cluster = np.round(rng.normal(0.1, 0.4, 17), 2)
    differences = np.repeat(per_cluster, 6) / 6  # six items per cluster, summing to the cluster's value
    clusters = np.repeat([f"tài liệu {i}" for i in range(17)], 6)
    sixteen = paired_permutation_p(differences[:96], clusters=clusters[:96])
    assert sixteen.draws == 0 and sixteen.p_value == pytest.approx(enumerate_sign_flips(list(per_cluster[:16])))
    seventeen = paired_permutation_p(differences, clusters=clusters, seed=5)
    assert seventeen.draws == 10_000 and seventeen.error > 0
    assert abs(seventeen.p_value - enumerate_sign_flips(list(per_cluster))) < 4 * seventeen.error


def test_monte_carlo_p_carries_its_standard_error():
    from vnllmtest.metrics import paired_permutation_p

    # 40 units, so 10,000 random sign patterns; the exact p of this shift is near 0.05
    differences = [0.3] * 13 + [-0.1] * 17 + [0.05] * 10
    found = paired_permutation_p(differences, seed=0)
    assert found.draws == 10_000
    assert found.error == pytest.approx(math.sqrt(found.p_value * (1 - found.p_value) / 10_000))
    more = paired_permutation_p(differences, draws=40_000, seed=0)
    assert more.draws == 40_000 and more.error < found.error / 1.9
    assert abs(found.p_value - more.p_value) < 4 * found.error
    assert paired_permutation_p(differences, seed=0) == found  # reproducible for a seed
    with pytest.raises(ValueError, match="draws"):
        paired_permutation_p(differences, draws=0)


def test_monte_carlo_p_values_are_calibrated_under_no_difference():
    from vnllmtest.metrics import paired_permutation_p

    rng = np.random.default_rng(8)
    p_values = [paired_permutation_p(rng.normal(0, 1, 30), draws=2000, seed=i).p_value for i in range(200)]
    assert 0.01 <= np.mean(np.array(p_values) < 0.05) <= 0.10


def test_many_units_are_drawn_in_blocks():
    from vnllmtest.metrics import paired_permutation_p

    # 30,000 items x 10,000 draws would need 2.4 GB at once; blocks keep it small
    differences = np.random.default_rng(4).choice([-1.0, 0.0, 0.0, 1.0], 30_000)
    found = paired_permutation_p(differences, seed=1)
    assert found.draws == 10_000 and 0.0 < found.p_value <= 1.0
