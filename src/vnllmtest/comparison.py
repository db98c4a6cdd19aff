"""A run against a baseline run, paired on the items both evaluated: differences with CIs and
p-values per metric, the items that flipped between pass and miss, and the items only one run has.
A metric whose definition version differs between the runs is listed as incomparable instead."""

from __future__ import annotations

import importlib.metadata
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vnllmtest.outcomes import ItemResult, cluster_labels
from vnllmtest.metric_table import is_known_metric, metric_info, scale_of
from vnllmtest.metrics.stats import PERMUTATION_DRAWS, Estimate, estimate, mcnemar_exact, paired_permutation_p
from vnllmtest.stored_run import BaselineError, StoredRun

USUAL_LEVELS = (0.01, 0.05, 0.1)  # a Monte Carlo p this close to one of them is shown with its error


@dataclass(frozen=True)
class MetricDifference:
    """current - baseline on the items both runs scored, in points (judge metrics: rubric units)."""

    suite: str
    model: str
    baseline_model: str
    metric: str
    shared: int
    current: Estimate
    baseline: Estimate
    difference: Estimate
    p_value: float
    test: str  # "mcnemar" (binary metrics, independent items), "permutation" (sign flips, by cluster) or "none"
    p_error: float = 0.0  # Monte Carlo standard error of p_value; 0.0 for exact tests
    p_draws: int = 0  # random sign patterns behind p_value; 0 when exact

    def describe_p(self, levels: Sequence[float] = USUAL_LEVELS) -> str:
        """`0.688 (mcnemar)`, `0.0469 (permutation, exact)`, `0.31 (permutation, 10,000 draws)`, or, when
        the Monte Carlo error could move p across one of `levels` (within 3 standard errors of it),
        `0.0481 ± 0.002 (permutation, 10,000 draws)`; `n/a` without a p-value."""
        if math.isnan(self.p_value):
            return "n/a"
        if not self.p_draws:
            return f"{self.p_value:.3g} ({self.test}{', exact' if self.test == 'permutation' else ''})"
        near = any(abs(self.p_value - level) <= 3 * self.p_error for level in levels)
        error = f" ± {self.p_error:.1g}" if near else ""
        return f"{self.p_value:.3g}{error} ({self.test}, {self.p_draws:,} draws)"


@dataclass(frozen=True)
class Incomparable:
    """A metric present in both runs but not compared, because its definitions differ (or are unknown)."""

    suite: str
    model: str
    baseline_model: str
    metric: str
    baseline_version: int | None
    current_version: int | None
    reason: str  # e.g. "definition changed (baseline v1, this run v2)"


@dataclass(frozen=True)
class Coverage:
    """Which items of one (suite, model) the baseline also has."""

    suite: str
    model: str
    baseline_model: str | None  # None: the baseline has no results for this suite
    shared: int
    only_current: list[str]
    only_baseline: list[str]


@dataclass(frozen=True)
class Flip:
    """An item that passed in one run and not in the other."""

    suite: str
    model: str
    baseline_model: str
    id: str
    direction: str  # "regression" (passed in the baseline) or "fix"
    baseline_status: str
    status: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    nodeid: str | None = None


@dataclass
class Comparison:
    baseline: StoredRun
    differences: list[MetricDifference] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)
    incomparable: list[Incomparable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. definition versions assumed for an old baseline

    def difference(self, suite: str, model: str, metric: str) -> MetricDifference | None:
        return next((d for d in self.differences if (d.suite, d.model, d.metric) == (suite, model, metric)), None)

    def incomparable_reason(self, suite: str, model: str, metric: str) -> str | None:
        """Why `metric` was not compared for (suite, model), e.g. "definition changed (baseline v1,
        this run v2)"; None when it was compared (or neither run has it)."""
        return next(
            (i.reason for i in self.incomparable if (i.suite, i.model, i.metric) == (suite, model, metric)), None
        )

    @property
    def regressions(self) -> list[Flip]:
        return [flip for flip in self.flips if flip.direction == "regression"]

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": {"path": str(self.baseline.path), "run_id": self.baseline.run_id},
            "metrics": [asdict(d) for d in self.differences],
            "coverage": [asdict(c) for c in self.coverage],
            "flips": [asdict(f) for f in self.flips],
            "incomparable": [asdict(i) for i in self.incomparable],
            "notes": list(self.notes),
        }


def check_pairing(baseline: StoredRun, labels: Sequence[str], baseline_model: str | None) -> None:
    """Raise BaselineError now, before any model loads, if a model could not be paired with the baseline."""
    if not baseline.items:
        raise BaselineError(f"{baseline.path}: the run holds no items")
    available: dict[str, set[str]] = defaultdict(set)
    for item in baseline.items:
        available[item.suite].add(item.model)
    for suite, models in available.items():
        for label in labels:
            _baseline_model(suite, label, sorted(models), baseline_model)


def compare(
    current: Iterable[ItemResult],
    baseline: StoredRun,
    metrics_by_suite: Mapping[str, Sequence[str]],
    *,
    baseline_model: str | None = None,
    nodeids: Mapping[tuple[str, str, str], str] | None = None,
    seed: int = 0,
    iterations: int = 1000,
    current_run: StoredRun | None = None,
) -> Comparison:
    """Pair every (suite, model) group of `current` with the baseline's results for that suite (the
    same model label, else `baseline_model`, else the baseline's only model). `iterations` sets the
    bootstrap resamples, and the permutation draws when above PERMUTATION_DRAWS. `current` was made
    under this vnllmtest's metric definitions, or under `current_run`'s stored ones when given."""
    groups = _by_group(current)
    stored = _by_group(baseline.items)
    comparison = Comparison(baseline)
    current_version = current_run.definition_version if current_run is not None else defined_version
    comparison.notes += [run.definitions_note for run in (baseline, current_run) if run and run.definitions_note]
    comparison.notes += _requirement_notes(baseline, current_run, metrics_by_suite)
    for (suite, model), records in sorted(groups.items()):
        matched = _baseline_model(suite, model, sorted(m for s, m in stored if s == suite), baseline_model)
        if matched is None:
            comparison.coverage.append(Coverage(suite, model, None, 0, sorted(records), []))
            continue
        theirs = stored[(suite, matched)]
        shared = sorted(set(records) & set(theirs))
        comparison.coverage.append(
            Coverage(
                suite,
                model,
                matched,
                len(shared),
                sorted(set(records) - set(theirs)),
                sorted(set(theirs) - set(records)),
            )
        )
        pairs = [(records[key], theirs[key]) for key in shared]
        for metric in metrics_by_suite.get(suite, ()):
            if not any(metric in theirs.metrics for _, theirs in pairs):
                continue  # the baseline has no value to compare (e.g. a judge it did not run)
            before, now = baseline.definition_version(metric), current_version(metric)
            reason = _incomparable_reason(metric, before, now)
            if reason is not None:
                comparison.incomparable.append(Incomparable(suite, model, matched, metric, before, now, reason))
            else:
                comparison.differences.append(_difference(suite, model, matched, metric, pairs, seed, iterations))
        comparison.flips += _flips(suite, model, matched, pairs, nodeids or {})
    comparison.flips.sort(key=lambda f: (f.direction != "regression", f.suite, f.model, f.id))
    return comparison


def _requirement_notes(
    baseline: StoredRun, current_run: StoredRun | None, metrics_by_suite: Mapping[str, Sequence[str]]
) -> list[str]:
    """A note for each package a compared metric computes with (its `requires`, such as the word segmenter)
    whose recorded version differs between the runs: the same definition may then split text differently."""
    scored = {name for item in baseline.items for name in item.metrics}
    names = sorted({name for metrics in metrics_by_suite.values() for name in metrics if name in scored})
    names = [name for name in names if is_known_metric(name)]
    packages = sorted({package for name in names for package in metric_info(name).requires})
    notes = []
    for package in packages:
        before, now = _package_version(baseline, package), _package_version(current_run, package)
        if before != now:
            users = ", ".join(name for name in names if package in metric_info(name).requires)
            notes.append(
                f"{users}: computed with {package} {before or 'not recorded'} in {baseline.run_id} and "
                f"{now or 'not recorded'} in {current_run.run_id if current_run else 'this run'}; "
                "its releases may treat some texts differently"
            )
    return notes


def _package_version(run: StoredRun | None, package: str) -> str | None:
    """The version of `package` a stored run recorded, or (run None) the one installed here."""
    if run is None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None
    manifest = (run.summary or {}).get("manifest")
    versions = manifest.get("versions") if isinstance(manifest, dict) else None
    found = versions.get(package) if isinstance(versions, dict) else None
    return found if isinstance(found, str) else None


def _by_group(items: Iterable[ItemResult]) -> dict[tuple[str, str], dict[str, ItemResult]]:
    groups: dict[tuple[str, str], dict[str, ItemResult]] = defaultdict(dict)
    for item in items:
        groups[(item.suite, item.model)][item.id] = item
    return groups


def _baseline_model(suite: str, model: str, available: list[str], chosen: str | None) -> str | None:
    if not available:
        return None
    if chosen is not None:
        if chosen not in available:
            raise BaselineError(
                f"--baseline-model {chosen}: the baseline's {suite} results are for {', '.join(available)}"
            )
        return chosen
    if model in available:
        return model
    if len(available) == 1:
        return available[0]
    raise BaselineError(
        f"the baseline has {suite} results for several models ({', '.join(available)}) and none is "
        f"'{model}': choose one with --baseline-model"
    )


def defined_version(metric: str) -> int | None:
    """The version of `metric`'s definition in this vnllmtest; None for a name it does not define."""
    try:
        return metric_info(metric).version
    except KeyError:
        return None


def _incomparable_reason(metric: str, before: int | None, now: int | None) -> str | None:
    if defined_version(metric) is None:
        return "not a metric this vnllmtest defines (its kind and definition are unknown)"
    if before is None or now is None:
        sides = (("baseline", before), ("this run", now))
        recorded = ", ".join(f"{side} {'not recorded' if v is None else f'v{v}'}" for side, v in sides)
        return f"definition version unknown ({recorded})"
    if before != now:
        return f"definition changed (baseline v{before}, this run v{now})"
    return None


def _difference(
    suite: str,
    model: str,
    baseline_model: str,
    metric: str,
    pairs: list[tuple[ItemResult, ItemResult]],
    seed: int,
    iterations: int,
) -> MetricDifference:
    """The paired difference, tested by the metric's declared kind: McNemar for a binary metric on
    independent items, else a sign-flip permutation test over items or clusters."""
    scored = [(ours, theirs) for ours, theirs in pairs if metric in ours.metrics and metric in theirs.metrics]
    now = [ours.metrics[metric] for ours, _ in scored]
    before = [theirs.metrics[metric] for _, theirs in scored]
    differences = [a - b for a, b in zip(now, before)]
    clusters = cluster_labels([ours for ours, _ in scored])
    options = {"seed": seed, "iterations": iterations}
    scale = scale_of(metric)
    p_error, p_draws = 0.0, 0
    if not scored:
        p_value, test = float("nan"), "none"
    elif metric_info(metric).kind == "binary" and clusters is None:
        p_value, test = _mcnemar(metric, now, before), "mcnemar"
    else:
        found = paired_permutation_p(
            differences, draws=max(PERMUTATION_DRAWS, iterations), seed=seed, clusters=clusters
        )
        p_value, test, p_error, p_draws = found.p_value, "permutation", found.error, found.draws
    return MetricDifference(
        suite,
        model,
        baseline_model,
        metric,
        len(scored),
        estimate(now, scale=scale, clusters=clusters, **options),
        estimate(before, scale=scale, clusters=clusters, **options),
        estimate(differences, scale=scale, clusters=clusters, **options),
        p_value,
        test,
        p_error,
        p_draws,
    )


def _mcnemar(metric: str, now: list[float], before: list[float]) -> float:
    odd = next((value for value in now + before if value not in (0.0, 1.0)), None)
    if odd is not None:
        raise ValueError(f"metric '{metric}' is declared binary but has the value {odd!r}")
    only_now = sum(1 for a, b in zip(now, before) if a > b)
    only_before = sum(1 for a, b in zip(now, before) if a < b)
    return mcnemar_exact(only_before, only_now)


def _flips(
    suite: str,
    model: str,
    baseline_model: str,
    pairs: list[tuple[ItemResult, ItemResult]],
    nodeids: Mapping[tuple[str, str, str], str],
) -> list[Flip]:
    flips = []
    for ours, theirs in pairs:
        was, now = theirs.status == "passed", ours.status == "passed"
        if was != now:
            flips.append(
                Flip(
                    suite,
                    model,
                    baseline_model,
                    ours.id,
                    "regression" if was else "fix",
                    theirs.status,
                    ours.status,
                    dict(ours.metrics),
                    dict(theirs.metrics),
                    nodeids.get((suite, model, ours.id)),
                )
            )
    return flips
