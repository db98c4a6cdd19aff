"""Aggregation: per (suite, model) metric estimates with 95% CIs, breakdowns by tag and judge
agreement. Gates are checked afterwards, by vnllmtest.gates, once any baseline comparison exists."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from vnllmtest.metric_table import VERDICT_COVERAGE, scale_of
from vnllmtest.metrics import Estimate, estimate, spearman
from vnllmtest.outcomes import GroupSummary, ItemResult, RunScope, cluster_labels
from vnllmtest.suite import SuiteSpec

MAX_BREAKDOWN_VALUES = 12  # tags with more values (e.g. VMLU's 58 subjects) stay in summary.json only


def summarize(
    items: Iterable[ItemResult],
    specs: Mapping[str, SuiteSpec],
    *,
    seed: int = 0,
    iterations: int = 1000,
    scope: RunScope | None = None,
) -> list[GroupSummary]:
    """Group item results by (suite, model) and compute every metric and breakdown; `scope` tells
    each group how many items its suite plans."""
    grouped: dict[tuple[str, str], list[ItemResult]] = defaultdict(list)
    for item in items:
        grouped[(item.suite, item.model)].append(item)
    summaries = []
    for (suite, model), members in grouped.items():
        members.sort(key=lambda item: item.id)  # CIs must not depend on the order items finished in
        spec = specs[suite]
        planned = scope.planned.get(suite) if scope else None
        summary = GroupSummary(suite, model, items=len(members), planned=planned, cluster_by=spec.cluster_by)
        summary.clusters = len({item.cluster for item in members if item.cluster})
        summary.statuses.update(item.status for item in members)
        summary.failure_classes.update(item.failure_class for item in members if item.failure_class)
        summary.truncated = sum(1 for item in members if item.truncation)
        summary.thinking_tokens = sum(item.thinking_tokens for item in members)
        scored = [item for item in members if item.status != "error"]
        summary.metrics = _estimates(scored, spec.reported_metrics, seed, iterations)
        summary.unscored = {m: sum(1 for item in scored if m not in item.metrics) for m in spec.reported_metrics}
        summary.judge_agreement = judge_agreement(scored)
        summary.breakdowns = _breakdowns(scored, spec, seed, iterations)
        summary.verdicts = _verdict_counts(scored) if spec.judge is not None else None
        summaries.append(summary)
    return sorted(summaries, key=lambda s: (s.suite, s.model))


def _estimates(items: list[ItemResult], metrics: Iterable[str], seed: int, iterations: int) -> dict[str, Estimate]:
    """Each metric's mean and CI over the items that have it, resampling clusters where declared.
    A non-finite value (a broken metric) makes the estimate NaN, which fails every gate on it."""
    found = {}
    for metric in metrics:
        having = [item for item in items if metric in item.metrics]
        values = [item.metrics[metric] for item in having]
        if not all(math.isfinite(value) for value in values):
            found[metric] = Estimate(math.nan, math.nan, math.nan, len(values))
            continue
        clusters = cluster_labels(having)
        found[metric] = estimate(values, scale=scale_of(metric), seed=seed, iterations=iterations, clusters=clusters)
    return found


def _breakdowns(scored: list[ItemResult], spec: SuiteSpec, seed: int, iterations: int) -> dict:
    by_tag: dict[str, dict[str, list[ItemResult]]] = defaultdict(lambda: defaultdict(list))
    for item in scored:
        for tag, value in item.tags.items():
            by_tag[tag][value].append(item)
    return {
        tag: {
            value: _estimates(members, spec.reported_metrics, seed, iterations)
            for value, members in sorted(groups.items())
        }
        for tag, groups in sorted(by_tag.items())
    }


def _verdict_counts(scored: list[ItemResult]) -> tuple[int, int]:
    """(items whose first judge gave a readable verdict, items judged), from their verdict_coverage."""
    verdicts = [item.metrics[VERDICT_COVERAGE] for item in scored if VERDICT_COVERAGE in item.metrics]
    return sum(1 for value in verdicts if value == 1.0), len(verdicts)


def judge_agreement(items: Iterable[ItemResult]) -> dict[str, dict[str, dict[str, float]]]:
    """For each extra judge, per criterion (and overall): items both scored, the mean absolute
    difference from the first judge, and Spearman's rank correlation with it."""
    pairs: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        judges = item.judges
        if len(judges) < 2 or judges[0]["scores"] is None:
            continue
        first = {**judges[0]["scores"], "overall": judges[0]["overall"]}
        for other in judges[1:]:
            if other["scores"] is not None:
                theirs = {**other["scores"], "overall": other["overall"]}
                for name, value in first.items():
                    if value is not None:  # "overall" is None for a rubric without criteria
                        pairs[other["judge"]][name].append((value, theirs[name]))
    return {
        judge: {
            name: {
                "n": len(values),
                "mean_abs_diff": sum(abs(a - b) for a, b in values) / len(values),
                "spearman": spearman([a for a, _ in values], [b for _, b in values]),
            }
            for name, values in by_criterion.items()
        }
        for judge, by_criterion in pairs.items()
    }
