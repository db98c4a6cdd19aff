"""Estimates recomputed from stored runs' items, as each run's own report computed them: the metric names
each suite's items carry, and one (suite, model, metric) estimate with its bootstrap CI."""

from __future__ import annotations

from vnllmtest.metric_table import scale_of
from vnllmtest.metrics import Estimate, estimate
from vnllmtest.outcomes import cluster_labels
from vnllmtest.stored_run import StoredRun


def run_estimate(run: StoredRun, suite: str, model: str, metric: str, iterations: int) -> Estimate:
    """`metric` over the (suite, model) items of `run` that have a value (errors left out), resampling
    clusters where the items have them."""
    having = [
        item
        for item in run.items
        if (item.suite, item.model) == (suite, model) and item.status != "error" and metric in item.metrics
    ]
    values = [item.metrics[metric] for item in having]
    return estimate(values, scale=scale_of(metric), iterations=iterations, clusters=cluster_labels(having))


def metrics_by_suite(*runs: StoredRun) -> dict[str, list[str]]:
    """Each suite's metric names in the order the runs' items first give them, suites sorted."""
    found: dict[str, dict[str, None]] = {}
    for run in runs:
        for item in run.items:
            found.setdefault(item.suite, {}).update(dict.fromkeys(item.metrics))
    return {suite: list(names) for suite, names in sorted(found.items())}
