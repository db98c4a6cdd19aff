"""Aggregation: per (suite, model) metric estimates with 95% CIs, breakdowns by tag, and gates."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vnllmtest.metrics import Estimate, estimate, spearman
from vnllmtest.suite import JUDGE_PREFIX, Gate, SuiteSpec

PERCENT = 100.0  # item metrics lie in [0, 1]; aggregates are reported in points (0-100)


@dataclass(frozen=True)
class GateResult:
    suite: str
    model: str
    metric: str
    gate: str  # readable form, e.g. "accuracy >= 25 (ci_low)"
    value: float
    passed: bool
    reason: str = ""


@dataclass
class GroupSummary:
    """One suite evaluated by one model."""

    suite: str
    model: str
    items: int = 0
    statuses: Counter = field(default_factory=Counter)
    failure_classes: Counter = field(default_factory=Counter)
    truncated: int = 0  # items whose prompt a token budget shortened
    thinking_tokens: int = 0  # tokens spent inside <think> blocks
    metrics: dict[str, Estimate] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, Estimate]]] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    judge_agreement: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def summarize(
    records: Iterable[Mapping[str, Any]], specs: Mapping[str, SuiteSpec], *, seed: int = 0, iterations: int = 1000
) -> list[GroupSummary]:
    """Group item records by (suite, model) and compute every metric, breakdown and gate."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[(record["suite"], record["model"])].append(record)
    summaries = []
    for (suite, model), members in grouped.items():
        spec = specs[suite]
        summary = GroupSummary(suite=suite, model=model, items=len(members))
        summary.statuses.update(r["status"] for r in members)
        summary.failure_classes.update(r["failure_class"] for r in members if r["failure_class"])
        summary.truncated = sum(1 for r in members if r.get("truncation"))
        summary.thinking_tokens = sum(r.get("thinking_tokens", 0) for r in members)
        scored = [r for r in members if r["status"] != "error"]
        for metric in spec.reported_metrics:
            values = [r["metrics"][metric] for r in scored if metric in r["metrics"]]
            summary.metrics[metric] = estimate(values, scale=scale_of(metric), seed=seed, iterations=iterations)
        summary.judge_agreement = judge_agreement(scored)
        summary.breakdowns = _breakdowns(scored, spec, seed, iterations)
        summary.gates = [_check(gate, summary) for gate in spec.gates]
        summaries.append(summary)
    return sorted(summaries, key=lambda s: (s.suite, s.model))


def _breakdowns(scored: list[Mapping[str, Any]], spec: SuiteSpec, seed: int, iterations: int) -> dict:
    by_tag: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in scored:
        for tag, value in record.get("tags", {}).items():
            by_tag[tag][value].append(record)
    return {
        tag: {
            value: {
                metric: estimate(
                    [r["metrics"][metric] for r in members if metric in r["metrics"]],
                    scale=scale_of(metric),
                    seed=seed,
                    iterations=iterations,
                )
                for metric in spec.reported_metrics
            }
            for value, members in sorted(groups.items())
        }
        for tag, groups in sorted(by_tag.items())
    }


def scale_of(metric: str) -> float:
    """Item metrics in [0, 1] are reported in points; judge scores keep the rubric's scale."""
    return 1.0 if metric.startswith(JUDGE_PREFIX) else PERCENT


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
    parts = []
    if gate.min is not None:
        parts.append(f">= {gate.min:g}")
    if gate.max is not None:
        parts.append(f"<= {gate.max:g}")
    bound = "" if gate.bound == "value" else f" ({gate.bound})"
    return f"{gate.metric} {' and '.join(parts)}{bound}"


def _check(gate: Gate, summary: GroupSummary) -> GateResult:
    described = describe_gate(gate)
    found = summary.metrics[gate.metric]
    value = {"value": found.value, "ci_low": found.low, "ci_high": found.high}[gate.bound]
    if found.n == 0:
        return GateResult(summary.suite, summary.model, gate.metric, described, value, False, "no scored items")
    if math.isnan(value):
        return GateResult(summary.suite, summary.model, gate.metric, described, value, False, "value is NaN")
    passed = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
    reason = "" if passed else "threshold not met"
    return GateResult(summary.suite, summary.model, gate.metric, described, value, passed, reason)
