"""Estimates recomputed from stored runs' items, as each run's own report computed them: the metric names
each suite's items carry, the bootstrap options a run recorded, and one (suite, model, metric) estimate with
its bootstrap CI and the count of items without a value."""

from __future__ import annotations

from vnllmtest.clipping import described
from vnllmtest.metric_table import scale_of
from vnllmtest.metrics import Estimate, estimate
from vnllmtest.outcomes import cluster_labels
from vnllmtest.stored_run import BaselineError, StoredRun


def run_estimate(run: StoredRun, suite: str, model: str, metric: str, iterations: int) -> Estimate:
    """`metric` over the (suite, model) items of `run` that have a value (errors left out), as the run's report
    computed it: items in id order, the bootstrap resamples and seed the run recorded (`iterations` and seed 0
    for a run that recorded none), clusters resampled where the items have them. BaselineError names a
    malformed recorded option."""
    iterations, seed = recorded_bootstrap(run, iterations)
    having = sorted(
        (
            item
            for item in run.items
            if (item.suite, item.model) == (suite, model) and item.status != "error" and metric in item.metrics
        ),
        key=lambda item: item.id,
    )
    values = [item.metrics[metric] for item in having]
    return estimate(values, scale=scale_of(metric), iterations=iterations, seed=seed, clusters=cluster_labels(having))


def without_value(run: StoredRun, suite: str, model: str, metric: str) -> int:
    """How many (suite, model) items of `run` have no value of `metric` (errored, or not scored on it)."""
    return sum(
        1
        for item in run.items
        if (item.suite, item.model) == (suite, model) and (item.status == "error" or metric not in item.metrics)
    )


def recorded_bootstrap(run: StoredRun, iterations: int) -> tuple[int, int]:
    """The bootstrap resamples and seed the run's report used (summary.json's manifest.options), or
    (`iterations`, 0) for a run that did not record them. BaselineError names a malformed field."""
    manifest = (run.summary or {}).get("manifest")
    options = manifest.get("options") if isinstance(manifest, dict) else None
    if not isinstance(options, dict):
        return iterations, 0
    found = []
    for key, default, least in (("bootstrap_iterations", iterations, 1), ("bootstrap_seed", 0, 0)):
        value = options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BaselineError(
                f"{run.summary_file}: field 'manifest.options.{key}': expected a whole number of at least {least}, "
                f"got {described(value, 80)}"
            )
        found.append(value)
    return found[0], found[1]


def metrics_by_suite(*runs: StoredRun) -> dict[str, list[str]]:
    """Each suite's metric names in the order the runs' items first give them, suites sorted."""
    found: dict[str, dict[str, None]] = {}
    for run in runs:
        for item in run.items:
            found.setdefault(item.suite, {}).update(dict.fromkeys(item.metrics))
    return {suite: list(names) for suite, names in sorted(found.items())}
