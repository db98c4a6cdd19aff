"""The paired comparison: which test each metric gets (from its declared kind, never from its values),
p-values with their Monte Carlo error, and metrics whose definition versions differ between the runs."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from support import write_jsonl
from vnllmtest.cli import main
from vnllmtest.comparison import Comparison, MetricDifference, compare
from vnllmtest.extensions import METRICS
from vnllmtest.metric_table import metric_info
from vnllmtest.metrics import Estimate, mcnemar_exact
from vnllmtest.outcomes import ItemResult
from vnllmtest.report import comparison_markdown
from vnllmtest.stored_run import load_run

DEFINED = {name: metric_info(name) for name in METRICS.names()}


def metric_named(kind: str, changed: bool) -> str:
    """A metric from the table by its declared kind, reported in points, whose definition has changed
    (version 2 or more) or not (version 1); the tests do not depend on today's names."""
    for name, info in DEFINED.items():
        if info.kind == kind and info.scale == "points" and (info.version > 1) == changed:
            return name
    which = "a changed" if changed else "an unchanged"
    pytest.skip(f"no {kind} metric with {which} definition", allow_module_level=True)


BINARY = metric_named("binary", changed=True)
CONTINUOUS = metric_named("continuous", changed=True)
VERSIONS = {name: info.version for name, info in DEFINED.items()}


def item(key: str, metrics: dict[str, float], cluster: str | None = None, model: str = "qwen") -> ItemResult:
    passed = all(value >= 0.5 for value in metrics.values())
    return ItemResult("kiem-tra", model, key, "passed" if passed else "missed", metrics=metrics, cluster=cluster)


def stored(folder: Path, items: list[ItemResult], definitions: dict | None = VERSIONS, summary: bool = True):
    """A run folder written as a run writes it, read back through load_run."""
    write_jsonl(folder / "items.jsonl", [found.to_record() for found in items])
    if summary:
        document = {"run": {"id": folder.name}}
        if definitions is not None:
            document["metric_definitions"] = definitions
        (folder / "summary.json").write_text(json.dumps(document), "utf-8")
    return load_run(folder)


def pair_up(tmp_path, now: list[float], before: list[float], metric: str, clusters=None, **baseline_options):
    keys = [f"cau-{n:03d}" for n in range(len(now))]
    clusters = clusters or [None] * len(now)
    current = [item(k, {metric: v}, c) for k, v, c in zip(keys, now, clusters)]
    theirs = [item(k, {metric: v}, c, "base") for k, v, c in zip(keys, before, clusters)]
    baseline = stored(tmp_path / "goc", theirs, **baseline_options)
    return current, baseline


def test_a_continuous_metric_with_only_0_and_1_values_gets_the_permutation_test(tmp_path):
    now = [1.0] * 20 + [0.0] * 10
    before = [1.0] * 14 + [0.0] * 16
    current, baseline = pair_up(tmp_path, now, before, CONTINUOUS)
    found = compare(current, baseline, {"kiem-tra": [CONTINUOUS]}).differences[0]
    assert (found.test, found.p_draws, found.shared) == ("permutation", 10_000, 30)
    assert found.p_error == pytest.approx(math.sqrt(found.p_value * (1 - found.p_value) / 10_000))
    # six items improved, none got worse: the exact sign-flip p is 2/64
    assert abs(found.p_value - 2 / 64) < 4 * found.p_error
    assert found.difference.value == pytest.approx(20.0)


def test_a_binary_metric_on_independent_items_gets_mcnemar(tmp_path):
    now = [1.0] * 12 + [0.0] * 3 + [1.0] * 2 + [0.0] * 13
    before = [1.0] * 12 + [1.0] * 3 + [0.0] * 2 + [0.0] * 13
    current, baseline = pair_up(tmp_path, now, before, BINARY)
    found = compare(current, baseline, {"kiem-tra": [BINARY]}).differences[0]
    assert (found.test, found.p_error, found.p_draws) == ("mcnemar", 0.0, 0)
    assert found.p_value == mcnemar_exact(3, 2)
    assert found.describe_p() == f"{mcnemar_exact(3, 2):.3g} (mcnemar)"


def test_a_binary_metric_on_clustered_items_is_permuted_by_cluster_exactly(tmp_path):
    # eight documents of four questions; each document's summed change is what flips sign
    changes = [2, 1, 0, 3, -1, 1, 2, 0]
    now, before, clusters = [], [], []
    for number, change in enumerate(changes):
        ups, downs = max(change, 0), max(-change, 0)
        now += [1.0] * ups + [0.0] * downs + [1.0] * (4 - ups - downs)
        before += [0.0] * ups + [1.0] * downs + [1.0] * (4 - ups - downs)
        clusters += [f"van-ban-{number}"] * 4
    current, baseline = pair_up(tmp_path, now, before, BINARY, clusters=clusters)
    found = compare(current, baseline, {"kiem-tra": [BINARY]}).differences[0]
    patterns = list(itertools.product((1, -1), repeat=len(changes)))
    expected = sum(abs(sum(s * c for s, c in zip(signs, changes))) >= sum(changes) for signs in patterns)
    assert (found.test, found.p_draws, found.p_error) == ("permutation", 0, 0.0)
    assert found.p_value == expected / len(patterns)
    assert found.describe_p() == f"{expected / len(patterns):.3g} (permutation, exact)"


def test_a_binary_metric_with_another_value_is_an_error_not_a_guess(tmp_path):
    current, baseline = pair_up(tmp_path, [1.0, 0.5, 0.0], [0.0, 1.0, 1.0], BINARY)
    with pytest.raises(ValueError, match=f"'{BINARY}' is declared binary but has the value 0.5"):
        compare(current, baseline, {"kiem-tra": [BINARY]})


@pytest.mark.parametrize(("iterations", "draws"), [(1000, 10_000), (10_000, 10_000), (25_000, 25_000)])
def test_permutation_draws_never_fall_below_10000(tmp_path, iterations, draws):
    now = [0.8, 0.6, 0.9, 0.4, 0.7] * 5
    before = [0.7, 0.6, 0.5, 0.5, 0.6] * 5
    current, baseline = pair_up(tmp_path, now, before, CONTINUOUS)
    found = compare(current, baseline, {"kiem-tra": [CONTINUOUS]}, iterations=iterations).differences[0]
    assert found.p_draws == draws


def difference(p_value: float, p_error: float, p_draws: int, test: str = "permutation") -> MetricDifference:
    shown = Estimate(1.0, 0.0, 2.0, 50)
    return MetricDifference("s", "m", "b", CONTINUOUS, 50, shown, shown, shown, p_value, test, p_error, p_draws)


@pytest.mark.parametrize(
    ("found", "levels", "text"),
    [
        (difference(0.0481, 0.0021, 10_000), (0.05,), "0.0481 ± 0.002 (permutation, 10,000 draws)"),
        (difference(0.0481, 0.0021, 10_000), (0.01,), "0.0481 (permutation, 10,000 draws)"),
        (difference(0.31, 0.0046, 10_000), (0.01, 0.05, 0.1), "0.31 (permutation, 10,000 draws)"),
        (difference(0.0112, 0.0011, 10_000), (0.01, 0.05, 0.1), "0.0112 ± 0.001 (permutation, 10,000 draws)"),
        (difference(0.0567, 0.0012, 40_000), (0.05,), "0.0567 (permutation, 40,000 draws)"),  # 5.6 errors away
        (difference(0.046875, 0.0, 0), (0.05,), "0.0469 (permutation, exact)"),
        (difference(0.049, 0.0, 0, "mcnemar"), (0.05,), "0.049 (mcnemar)"),
        (difference(math.nan, 0.0, 0, "none"), (0.05,), "n/a"),
    ],
)
def test_p_is_shown_with_its_error_only_where_it_could_cross_a_level(found, levels, text):
    assert found.describe_p(levels) == text


def test_a_changed_definition_is_not_compared_and_says_why(tmp_path):
    current, baseline = pair_up(
        tmp_path, [1.0, 0.0, 1.0], [1.0, 1.0, 0.0], BINARY, definitions={**VERSIONS, BINARY: VERSIONS[BINARY] - 1}
    )
    comparison = compare(current, baseline, {"kiem-tra": [BINARY]})
    reason = f"definition changed (baseline v{VERSIONS[BINARY] - 1}, this run v{VERSIONS[BINARY]})"
    assert comparison.differences == [] and comparison.difference("kiem-tra", "qwen", BINARY) is None
    assert comparison.incomparable_reason("kiem-tra", "qwen", BINARY) == reason
    assert comparison.incomparable_reason("kiem-tra", "other", BINARY) is None
    entry = json.loads(json.dumps(comparison.to_json()))["incomparable"][0]
    assert entry == {
        "suite": "kiem-tra",
        "model": "qwen",
        "baseline_model": "base",
        "metric": BINARY,
        "baseline_version": VERSIONS[BINARY] - 1,
        "current_version": VERSIONS[BINARY],
        "reason": reason,
    }
    markdown = "\n".join(comparison_markdown(comparison))
    assert f"| kiem-tra | {BINARY} | qwen | base | — | — | — | **not compared**: {reason} | — |" in markdown
    assert comparison.flips  # items are still paired: the flipped list does not depend on the metric's version


def test_the_same_definition_is_compared(tmp_path):
    current, baseline = pair_up(tmp_path, [1.0, 0.0, 1.0], [1.0, 1.0, 0.0], BINARY)
    comparison = compare(current, baseline, {"kiem-tra": [BINARY]})
    assert comparison.incomparable == [] and comparison.notes == []
    assert comparison.difference("kiem-tra", "qwen", BINARY).shared == 3


def test_a_baseline_from_before_versions_is_taken_as_version_1(tmp_path):
    unchanged = metric_named("binary", changed=False)
    keys = ["a", "b", "c", "d"]
    current = [item(k, {BINARY: 1.0, unchanged: 1.0}) for k in keys]
    baseline = stored(tmp_path / "cu", [item(k, {BINARY: 0.0, unchanged: 0.0}, model="base") for k in keys], None)
    comparison = compare(current, baseline, {"kiem-tra": [BINARY, unchanged]})
    assert [d.metric for d in comparison.differences] == [unchanged]
    assert comparison.incomparable_reason("kiem-tra", "qwen", BINARY) == (
        f"definition changed (baseline v1, this run v{VERSIONS[BINARY]})"
    )
    assert comparison.notes == ["cu: made before metric definitions were versioned; every metric taken as v1"]
    assert "- Note: cu: made before metric definitions were versioned" in "\n".join(comparison_markdown(comparison))


def test_a_bare_items_file_is_taken_as_version_1_and_says_so(tmp_path):
    keys = ["a", "b"]
    write_jsonl(tmp_path / "cu" / "items.jsonl", [item(k, {BINARY: 1.0}, model="base").to_record() for k in keys])
    baseline = load_run(tmp_path / "cu" / "items.jsonl")
    comparison = compare([item(k, {BINARY: 1.0}) for k in keys], baseline, {"kiem-tra": [BINARY]})
    assert comparison.incomparable[0].baseline_version == 1
    assert comparison.notes == ["cu: no summary.json beside its items; definitions unknown, every metric taken as v1"]


def test_a_version_the_baseline_did_not_record_is_unknown_not_assumed(tmp_path):
    recorded = {name: version for name, version in VERSIONS.items() if name != CONTINUOUS}
    current, baseline = pair_up(tmp_path, [0.4, 0.6], [0.5, 0.5], CONTINUOUS, definitions=recorded)
    comparison = compare(current, baseline, {"kiem-tra": [CONTINUOUS]})
    assert comparison.incomparable_reason("kiem-tra", "qwen", CONTINUOUS) == (
        f"definition version unknown (baseline not recorded, this run v{VERSIONS[CONTINUOUS]})"
    )


def test_a_metric_this_version_does_not_define_is_not_compared(tmp_path):
    current, baseline = pair_up(tmp_path, [1.0, 0.0], [0.0, 0.0], "accuracy_cu_da_bo")
    comparison = compare(current, baseline, {"kiem-tra": ["accuracy_cu_da_bo"]})
    assert comparison.differences == []
    reason = comparison.incomparable_reason("kiem-tra", "qwen", "accuracy_cu_da_bo")
    assert reason == "not a metric this vnllmtest defines (its kind and definition are unknown)"


def test_a_metric_the_baseline_lacks_is_neither_compared_nor_incomparable(tmp_path):
    current, baseline = pair_up(tmp_path, [1.0, 0.0], [0.0, 0.0], BINARY)
    current = [replace(found, metrics={**found.metrics, CONTINUOUS: 0.5}) for found in current]
    comparison = compare(current, baseline, {"kiem-tra": [BINARY, CONTINUOUS]})
    assert [d.metric for d in comparison.differences] == [BINARY] and comparison.incomparable == []


def test_two_stored_runs_are_compared_by_their_own_versions(tmp_path):
    keys = [f"k{n}" for n in range(6)]
    old = {**VERSIONS, BINARY: 1}
    baseline = stored(tmp_path / "r1", [item(k, {BINARY: float(n % 2)}, model="base") for n, k in enumerate(keys)], old)
    same = stored(tmp_path / "r2", [item(k, {BINARY: 1.0}) for k in keys], old)
    newer = stored(tmp_path / "r3", [item(k, {BINARY: 1.0}) for k in keys])
    assert compare(same.items, baseline, {"kiem-tra": [BINARY]}, current_run=same).difference(
        "kiem-tra", "qwen", BINARY
    ).p_value == mcnemar_exact(0, 3)
    later = compare(newer.items, baseline, {"kiem-tra": [BINARY]}, current_run=newer)
    assert later.incomparable_reason("kiem-tra", "qwen", BINARY) == (
        f"definition changed (baseline v1, this run v{VERSIONS[BINARY]})"
    )


def test_compare_command_handles_thousands_of_discordant_pairs(tmp_path, capsys):
    # 3,000 items, 1,200 lost and 1,000 gained: 2,200 discordant pairs (2.0**2200 overflowed before)
    before = [1.0] * 1200 + [0.0] * 1000 + [1.0] * 500 + [0.0] * 300
    now = [0.0] * 1200 + [1.0] * 1000 + [1.0] * 500 + [0.0] * 300
    keys = [f"cau-{n:04d}" for n in range(3000)]
    stored(tmp_path / "goc", [item(k, {BINARY: v}, model="base") for k, v in zip(keys, before)])
    stored(tmp_path / "moi", [item(k, {BINARY: v}) for k, v in zip(keys, now)])
    assert main(["compare", str(tmp_path / "goc"), str(tmp_path / "moi")]) == 0
    text = capsys.readouterr().out
    assert f"| {mcnemar_exact(1200, 1000):.3g} (mcnemar) |" in text
    assert "### Flipped items (1200 regressions, 1000 fixes)" in text


def test_compare_command_lists_changed_definitions_and_unknown_metrics(tmp_path, capsys):
    keys = ["a", "b", "c", "d"]
    old_items = [item(k, {BINARY: 1.0, CONTINUOUS: 0.5, "accuracy_cu_da_bo": 1.0}, model="base") for k in keys]
    stored(tmp_path / "goc", old_items, None)  # a run from before definition versions
    stored(tmp_path / "moi", [item(k, {BINARY: 0.0, CONTINUOUS: 0.75}) for k in keys])
    assert main(["compare", str(tmp_path / "goc"), str(tmp_path / "moi")]) == 0
    text = capsys.readouterr().out
    assert f"| kiem-tra | {BINARY} | 100.0 [100.0, 100.0] (v1) | 0.0 [0.0, 0.0] (v{VERSIONS[BINARY]}) |" in text
    assert "Not shown: `accuracy_cu_da_bo`, which this vnllmtest does not define" in text
    assert "- Note: goc: made before metric definitions were versioned; every metric taken as v1" in text
    for metric in (BINARY, CONTINUOUS):
        reason = f"definition changed (baseline v1, this run v{VERSIONS[metric]})"
        assert f"| kiem-tra | {metric} | qwen | base | — | — | — | **not compared**: {reason} | — |" in text


def test_comparison_json_carries_the_new_fields(tmp_path):
    current, baseline = pair_up(tmp_path, [0.2 * n % 1 for n in range(40)], [0.1] * 40, CONTINUOUS)
    document = json.loads(json.dumps(compare(current, baseline, {"kiem-tra": [CONTINUOUS]}).to_json()))
    found = document["metrics"][0]
    assert found["test"] == "permutation" and found["p_draws"] == 10_000 and 0 < found["p_error"] < 0.01
    assert document["incomparable"] == [] and document["notes"] == []
    assert isinstance(Comparison(baseline).to_json()["incomparable"], list)


def test_a_monte_carlo_p_near_005_is_shown_with_its_error_in_the_markdown(tmp_path):
    # 13 items gained, 4 lost, 20 unchanged: the exact two-sided p is 2 * P(Bin(17, 1/2) >= 13) = 0.049
    now = [1.0] * 13 + [0.0] * 4 + [0.5] * 20
    before = [0.0] * 13 + [1.0] * 4 + [0.5] * 20
    current, baseline = pair_up(tmp_path, now, before, CONTINUOUS)
    comparison = compare(current, baseline, {"kiem-tra": [CONTINUOUS]})
    found = comparison.differences[0]
    exact = 2 * sum(math.comb(17, k) for k in range(13, 18)) / 2**17
    assert abs(found.p_value - exact) < 4 * found.p_error
    row = next(line for line in comparison_markdown(comparison) if line.startswith("| kiem-tra |"))
    assert row.endswith(f"| {found.p_value:.3g} ± {found.p_error:.1g} (permutation, 10,000 draws) |")
