"""A trend over checkpoints: one point per stored run (one model of it), each metric per suite with its CI at
every point (as the run's own report computed it) and its items without a value, and each step (a point against
the previous one, or against a chosen reference point) compared by the baseline comparison's paired tests. The
p-values of all steps and metrics tested are adjusted together by Holm's step-down method; a step whose adjusted
p is below alpha and whose difference is negative is a significant drop. Every metric either point of a step
has that the step could not test (no shared items, no value in one point, definitions that differ) is listed
with the reason."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from vnllmtest.comparison import Comparison, Incomparable, MetricDifference, compare, defined_version
from vnllmtest.metrics import Estimate, holm_adjust
from vnllmtest.stored_estimates import metrics_by_suite, run_estimate, without_value
from vnllmtest.stored_run import BaselineError, StoredRun, load_run

CORRECTION = "Holm–Bonferroni"


@dataclass(frozen=True)
class Point:
    """One checkpoint: a stored run's results for one model (the run holds only that model's items)."""

    number: int  # 1-based, in command-line order
    run: StoredRun
    model: str

    @property
    def folder(self) -> str:
        """The run's folder name (its report folder, or the folder of the file given)."""
        path = self.run.path
        return (path if path.is_dir() else path.parent).resolve().name

    @property
    def label(self) -> str:
        return f"{self.model} ({self.folder})"

    @property
    def items_file(self) -> Path:
        path = self.run.path
        given_items = path.is_file() and path.name != "summary.json"
        return path if given_items else self.run.summary_file.with_name("items.jsonl")


@dataclass(frozen=True)
class Step:
    """Point `point` compared with point `against` (0-based indexes): the differences are `point` minus `against`."""

    point: int
    against: int
    comparison: Comparison


@dataclass(frozen=True)
class Tested:
    """One step's paired difference of one metric, its p-value adjusted with every other one tested."""

    step: int  # index into Trend.steps
    difference: MetricDifference
    adjusted_p: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.adjusted_p < self.alpha

    @property
    def drop(self) -> bool:
        return self.significant and self.difference.difference.value < 0

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "not significant"
        return "significant drop" if self.drop else "significant rise"


class Untested(NamedTuple):
    """A metric one point of a step has (or both) that the step did not test, and why."""

    step: int  # index into Trend.steps
    suite: str
    metric: str
    reason: str
    definitions: bool  # the two points' definitions of the metric differ (or are unknown)


@dataclass
class Trend:
    points: list[Point]
    reference: int | None  # the reference point's index; None: each point against the previous one
    alpha: float
    estimates: dict[tuple[str, str], list[Estimate]]  # (suite, metric): one estimate per point
    without_value: dict[tuple[str, str], list[int]]  # (suite, metric): items without a value, per point
    versions: dict[str, list[int | None]]  # metric: its definition version at each point
    steps: list[Step] = field(default_factory=list)
    tested: list[Tested] = field(default_factory=list)
    untested: list[Untested] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # metrics this vnllmtest does not define: not shown

    @property
    def correction(self) -> str:
        """The multiple-testing correction, named with the number of tests it covered."""
        count = len(self.tested)
        return f"{CORRECTION} across {count} test{'' if count == 1 else 's'}"

    @property
    def drops(self) -> list[Tested]:
        return [found for found in self.tested if found.drop]

    def result(self, step: int, suite: str, metric: str) -> Tested | None:
        return next(
            (t for t in self.tested if t.step == step and (t.difference.suite, t.difference.metric) == (suite, metric)),
            None,
        )

    def not_tested(self, step: int, suite: str, metric: str) -> Untested | None:
        return next((u for u in self.untested if (u.step, u.suite, u.metric) == (step, suite, metric)), None)

    @property
    def idle_steps(self) -> list[int]:
        """The steps that tested nothing."""
        return [n for n in range(len(self.steps)) if not any(t.step == n for t in self.tested)]

    def idle_reason(self, step: int) -> str:
        """Why a step tested nothing: the reasons of its untested metrics."""
        reasons = dict.fromkeys(u.reason for u in self.untested if u.step == step)
        return "; ".join(reasons) or "no metric has a value in either point"

    def repeated(self) -> list[str]:
        """Points that are the same run's same model, given more than once."""
        first: dict[tuple[Path, str], Point] = {}
        found = []
        for point in self.points:
            earlier = first.setdefault((point.items_file.resolve(), point.model), point)
            if earlier is not point:
                found.append(f"points {earlier.number} and {point.number} are the same run ({point.label})")
        return found

    def step_into(self, point: int) -> int | None:
        """The index of the step that compares `point` with an earlier or reference point, if any."""
        return next((n for n, step in enumerate(self.steps) if step.point == point), None)

    def step_name(self, step: Step) -> str:
        return f"{step.point + 1} vs {step.against + 1}"

    def suites(self) -> list[str]:
        return list(dict.fromkeys(suite for suite, _ in self.estimates))


def load_points(paths: Sequence[Path], models: Sequence[str]) -> list[Point]:
    """The runs at `paths`, each reduced to one model: the only one it holds, or `models` (one label for
    every run, or one per run in order). Raises BaselineError naming the run for a run that cannot be read,
    holds several models and none was chosen, or lacks the chosen one."""
    if len(models) not in (0, 1, len(paths)):
        raise BaselineError(f"--model given {len(models)} times for {len(paths)} runs: give it once, or once per run")
    points = []
    for number, path in enumerate(paths, start=1):
        run = load_run(path)
        chosen = models[0] if len(models) == 1 else models[number - 1] if models else None
        model = _chosen_model(run, chosen)
        kept = dataclasses.replace(run, items=[item for item in run.items if item.model == model])
        points.append(Point(number, kept, model))
    return points


def _chosen_model(run: StoredRun, chosen: str | None) -> str:
    models = list(dict.fromkeys(item.model for item in run.items))
    if not models:
        raise BaselineError(f"{run.path}: the run holds no items")
    if chosen is None:
        if len(models) > 1:
            raise BaselineError(f"{run.path}: the run holds several models ({', '.join(models)}): choose with --model")
        return models[0]
    if chosen not in models:
        raise BaselineError(f"{run.path}: no results for model '{chosen}'; the run holds {', '.join(models)}")
    return chosen


def reference_index(reference: str | None, paths: Sequence[Path]) -> int | None:
    """`--reference`: a point's number (1-based) or one of the runs' paths, as an index; None for none."""
    if reference is None:
        return None
    if reference.isdigit():
        number = int(reference)
        if not 1 <= number <= len(paths):
            raise BaselineError(f"--reference {reference}: choose a point from 1 to {len(paths)}")
        return number - 1
    given = Path(reference).resolve()
    found = [n for n, path in enumerate(paths) if Path(path).resolve() == given]
    if not found:
        raise BaselineError(f"--reference {reference}: not one of the runs given (use its path or its number)")
    return found[0]


def build_trend(points: list[Point], reference: int | None, alpha: float, iterations: int) -> Trend:
    """Every metric at every point (with the bootstrap each run recorded; `iterations` for a run that recorded
    none, and for the steps), every step's paired comparison, the tests' Holm-adjusted p-values, and what each
    step could not test."""
    runs = [point.run for point in points]
    suites = metrics_by_suite(*runs)
    trend = Trend(points, reference, alpha, {}, {}, {})
    for suite, names in suites.items():
        for metric in names:
            if defined_version(metric) is None:
                trend.unknown += [metric] if metric not in trend.unknown else []
                continue
            trend.estimates[(suite, metric)] = [
                run_estimate(point.run, suite, point.model, metric, iterations) for point in points
            ]
            counts = [without_value(point.run, suite, point.model, metric) for point in points]
            trend.without_value[(suite, metric)] = counts
            trend.versions[metric] = [run.definition_version(metric) for run in runs]
    pairs = [(n, n - 1) for n in range(1, len(points))] if reference is None else [
        (n, reference) for n in range(len(points)) if n != reference
    ]
    for later, earlier in pairs:
        comparison = compare(runs[later].items, runs[earlier], suites, iterations=iterations, current_run=runs[later])
        trend.steps.append(Step(later, earlier, comparison))
    tested = [(n, d) for n, step in enumerate(trend.steps) for d in step.comparison.differences
              if not math.isnan(d.p_value)]
    adjusted = holm_adjust([d.p_value for _, d in tested])
    trend.tested = [Tested(n, d, p, alpha) for (n, d), p in zip(tested, adjusted, strict=True)]
    trend.untested = [found for n in range(len(trend.steps)) for found in _untested(trend, n)]
    return trend


def _untested(trend: Trend, n: int) -> list[Untested]:
    """Every metric of the step's two points that the step did not test, with the reason."""
    step = trend.steps[n]
    numbers = {step.point: trend.points[step.point].number, step.against: trend.points[step.against].number}
    found = []
    for (suite, metric), estimates in trend.estimates.items():
        if trend.result(n, suite, metric) or all(estimates[index].n == 0 for index in numbers):
            continue
        incomparable = next((i for i in step.comparison.incomparable if (i.suite, i.metric) == (suite, metric)), None)
        if incomparable is not None:
            found.append(Untested(n, suite, metric, _definition_reason(incomparable, step, numbers), True))
            continue
        coverage = next((c for c in step.comparison.coverage if c.suite == suite), None)
        if coverage is None or coverage.baseline_model is None:
            only = numbers[step.against if coverage is None else step.point]
            reason = f"no shared items (only point {only} has {suite} results)"
        elif not coverage.shared:
            reason = "no shared items"
        else:
            empty = [numbers[index] for index in sorted(numbers) if estimates[index].n == 0]
            reason = f"no value in point {empty[0]}" if empty else "no item has a value in both points"
        found.append(Untested(n, suite, metric, reason, False))
    return found


def _definition_reason(incomparable: Incomparable, step: Step, numbers: dict[int, int]) -> str:
    """"definition changed (point 1 v1, point 2 v2)" or "definition version unknown (point 1 not recorded, ...)"."""
    versions = {numbers[step.against]: incomparable.baseline_version, numbers[step.point]: incomparable.current_version}
    sides = ", ".join(
        f"point {number} {'not recorded' if v is None else f'v{v}'}" for number, v in sorted(versions.items())
    )
    unknown = None in versions.values()
    return f"definition {'version unknown' if unknown else 'changed'} ({sides})"
