"""Aggregation: per (suite, model) metric estimates with 95% CIs, breakdowns by tag, and gates."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from vnllmtest.metrics import Estimate, estimate, spearman
from vnllmtest.suite import JUDGE_PREFIX, Gate, SuiteSpec

if TYPE_CHECKING:
    from vnllmtest.comparison import Comparison

PERCENT = 100.0  # item metrics lie in [0, 1]; aggregates are reported in points (0-100)
STATUSES = ("passed", "missed", "error")
MAX_BREAKDOWN_VALUES = 12  # tags with more values (e.g. VMLU's 58 subjects) stay in summary.json only


@dataclass(frozen=True)
class GateResult:
    suite: str
    model: str
    metric: str
    gate: str  # readable form, e.g. "accuracy >= 25 (ci_low)"
    value: float  # what the threshold was checked against
    passed: bool
    reason: str = ""
    skipped: bool = False  # a gate against --baseline in a run without one
    detail: str = ""  # the estimate behind `value`, e.g. "33.3 [15.0, 55.0]"


@dataclass
class GroupSummary:
    """One suite evaluated by one model."""

    suite: str
    model: str
    items: int = 0
    cluster_by: str | None = None
    clusters: int = 0  # distinct cluster labels among the items (0: items are independent)
    statuses: Counter = field(default_factory=Counter)
    failure_classes: Counter = field(default_factory=Counter)
    truncated: int = 0  # items whose prompt a token budget shortened
    thinking_tokens: int = 0  # tokens spent inside <think> blocks
    metrics: dict[str, Estimate] = field(default_factory=dict)
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
) -> list[GroupSummary]:
    """Group item records by (suite, model) and compute every metric, breakdown and gate (gates
    against a baseline use `comparison`, and are skipped without one)."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[(record["suite"], record["model"])].append(record)
    summaries = []
    for (suite, model), members in grouped.items():
        members.sort(key=lambda record: record["id"])  # CIs must not depend on the order items finished in
        spec = specs[suite]
        summary = GroupSummary(suite=suite, model=model, items=len(members), cluster_by=spec.cluster_by)
        summary.clusters = len({r["cluster"] for r in members if r.get("cluster")})
        summary.statuses.update(r["status"] for r in members)
        summary.failure_classes.update(r["failure_class"] for r in members if r["failure_class"])
        summary.truncated = sum(1 for r in members if r.get("truncation"))
        summary.thinking_tokens = sum(r.get("thinking_tokens", 0) for r in members)
        scored = [r for r in members if r["status"] != "error"]
        summary.metrics = _estimates(scored, spec.reported_metrics, seed, iterations)
        summary.judge_agreement = judge_agreement(scored)
        summary.breakdowns = _breakdowns(scored, spec, seed, iterations)
        summary.gates = [
            _check_relative(gate, summary, comparison) if gate.relative else _check(gate, summary)
            for gate in spec.gates
        ]
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


def scale_of(metric: str) -> float:
    """Item metrics in [0, 1] are reported in points; judge scores keep the rubric's scale."""
    return 1.0 if metric.startswith(JUDGE_PREFIX) else PERCENT


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


def describe_gate(gate: Gate) -> str:
    bound = "" if gate.bound == "value" else f" ({gate.bound})"
    if gate.relative:
        significance = "" if gate.significance is None else f", p < {gate.significance:g}"
        return f"{gate.metric} drop <= {gate.max_drop:g} vs baseline{bound}{significance}"
    parts = []
    if gate.min is not None:
        parts.append(f">= {gate.min:g}")
    if gate.max is not None:
        parts.append(f"<= {gate.max:g}")
    return f"{gate.metric} {' and '.join(parts)}{bound}"


def _bound(found: Estimate, bound: str) -> float:
    return {"value": found.value, "ci_low": found.low, "ci_high": found.high}[bound]


def _check(gate: Gate, summary: GroupSummary) -> GateResult:
    result = partial(GateResult, summary.suite, summary.model, gate.metric, describe_gate(gate))
    found = summary.metrics[gate.metric]
    value = _bound(found, gate.bound)
    if found.n == 0:
        return result(value, False, "no scored items", detail="n/a")
    if math.isnan(value):
        return result(value, False, "value is NaN", detail="n/a")
    passed = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
    return result(value, passed, "" if passed else "threshold not met", detail=found.describe())


def _check_relative(gate: Gate, summary: GroupSummary, comparison: Comparison | None) -> GateResult:
    """Fails when the paired difference (or its chosen CI bound) falls more than max_drop below zero,
    and, with `significance`, only when the drop is significant too."""
    result = partial(GateResult, summary.suite, summary.model, gate.metric, describe_gate(gate))
    if comparison is None:
        return result(math.nan, True, "no --baseline given", skipped=True, detail="n/a")
    found = comparison.difference(summary.suite, summary.model, gate.metric)
    if found is None or found.shared == 0:
        return result(math.nan, False, "no items shared with the baseline", detail="n/a")
    value = _bound(found.difference, gate.bound)
    detail = f"{found.difference.describe(signed=True)}, p={found.p_value:.3g} ({found.test}, {found.shared} items)"
    if math.isnan(value):
        return result(value, False, "difference is NaN", detail=detail)
    dropped = value < -gate.max_drop
    significant = gate.significance is None or found.p_value < gate.significance
    if dropped and significant:
        return result(
            value, False, f"dropped {-value:.1f} > {gate.max_drop:g} against {found.baseline_model}", detail=detail
        )
    reason = "" if not dropped else f"drop of {-value:.1f} is not significant (p={found.p_value:.3g})"
    return result(value, True, reason, detail=detail)
