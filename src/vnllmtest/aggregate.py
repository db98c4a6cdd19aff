"""Aggregation: per (suite, model) metric estimates with 95% CIs, breakdowns by tag, and gates
(checked by vnllmtest.gates)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vnllmtest.metrics import Estimate, estimate, spearman
from vnllmtest.metric_table import scale_of
from vnllmtest.gates import GateResult, RunScope, evaluate_gates
from vnllmtest.suite import SuiteSpec

if TYPE_CHECKING:
    from vnllmtest.comparison import Comparison

STATUSES = ("passed", "missed", "error")
MAX_BREAKDOWN_VALUES = 12  # tags with more values (e.g. VMLU's 58 subjects) stay in summary.json only


@dataclass
class GroupSummary:
    """One suite evaluated by one model."""

    suite: str
    model: str
    items: int = 0
    planned: int | None = None  # items the suite selects before --limit (None: not known, taken as whole)
    cluster_by: str | None = None
    clusters: int = 0  # distinct cluster labels among the items (0: items are independent)
    statuses: Counter = field(default_factory=Counter)
    failure_classes: Counter = field(default_factory=Counter)
    truncated: int = 0  # items whose prompt a token budget shortened
    thinking_tokens: int = 0  # tokens spent inside <think> blocks
    metrics: dict[str, Estimate] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)  # per metric: items (not errors) without a value
    breakdowns: dict[str, dict[str, dict[str, Estimate]]] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    judge_agreement: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def summarize(
    records: Iterable[Mapping[str, Any]],
    specs: Mapping[str, SuiteSpec],
    *,
    seed: int = 0,
    iterations: int = 1000,
    comparison: Comparison | None = None,
    scope: RunScope | None = None,
) -> list[GroupSummary]:
    """Group item records by (suite, model) and compute every metric, breakdown and gate (gates
    against a baseline use `comparison`, and are skipped without one; with `scope`, a group that
    has fewer items than its suite plans leaves its gates not evaluated)."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[(record["suite"], record["model"])].append(record)
    summaries = []
    for (suite, model), members in grouped.items():
        members.sort(key=lambda record: record["id"])  # CIs must not depend on the order items finished in
        spec = specs[suite]
        planned = scope.planned.get(suite) if scope else None
        summary = GroupSummary(suite, model, items=len(members), planned=planned, cluster_by=spec.cluster_by)
        summary.clusters = len({r["cluster"] for r in members if r.get("cluster")})
        summary.statuses.update(r["status"] for r in members)
        summary.failure_classes.update(r["failure_class"] for r in members if r["failure_class"])
        summary.truncated = sum(1 for r in members if r.get("truncation"))
        summary.thinking_tokens = sum(r.get("thinking_tokens", 0) for r in members)
        scored = [r for r in members if r["status"] != "error"]
        summary.metrics = _estimates(scored, spec.reported_metrics, seed, iterations)
        summary.unscored = {m: sum(1 for r in scored if m not in r["metrics"]) for m in spec.reported_metrics}
        summary.judge_agreement = judge_agreement(scored)
        summary.breakdowns = _breakdowns(scored, spec, seed, iterations)
        summary.gates = evaluate_gates(spec, summary, scored, comparison, scope)
        summaries.append(summary)
    return sorted(summaries, key=lambda s: (s.suite, s.model))


def _estimates(
    records: list[Mapping[str, Any]], metrics: Iterable[str], seed: int, iterations: int
) -> dict[str, Estimate]:
    """Each metric's mean and CI over the records that have it, resampling clusters where declared.
    A non-finite value (a broken metric) makes the estimate NaN, which fails every gate on it."""
    found = {}
    for metric in metrics:
        having = [r for r in records if metric in r["metrics"]]
        values = [r["metrics"][metric] for r in having]
        if not all(math.isfinite(value) for value in values):
            found[metric] = Estimate(math.nan, math.nan, math.nan, len(values))
            continue
        clusters = cluster_labels(having)
        found[metric] = estimate(values, scale=scale_of(metric), seed=seed, iterations=iterations, clusters=clusters)
    return found


def _breakdowns(scored: list[Mapping[str, Any]], spec: SuiteSpec, seed: int, iterations: int) -> dict:
    by_tag: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in scored:
        for tag, value in record.get("tags", {}).items():
            by_tag[tag][value].append(record)
    return {
        tag: {
            value: _estimates(members, spec.reported_metrics, seed, iterations)
            for value, members in sorted(groups.items())
        }
        for tag, groups in sorted(by_tag.items())
    }


def cluster_labels(records: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """Each record's cluster (its own id when it has none), or None when no record is clustered."""
    if not any(record.get("cluster") for record in records):
        return None
    return [record.get("cluster") or f"item:{record['id']}" for record in records]


def judge_agreement(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """For each extra judge, per criterion (and overall): items both scored, the mean absolute
    difference from the first judge, and Spearman's rank correlation with it."""
    pairs: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        judges = record.get("judges") or []
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
