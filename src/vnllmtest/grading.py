"""Model-graded scoring, after every candidate has run: the judge and model-graded metrics are kinds of
one `Scorer`. Each scorer names the suites it grades and the models it needs; each of those models is
loaded once, scores every job it is given, and is unloaded before the next one loads (the single-GPU
protocol). What a scorer could not score is counted (unscored) or is an item error, never dropped."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from vnllmtest.backends import Backend, ModelError, ModelSpec, parse_model_specs
from vnllmtest.backends.registry import Alias
from vnllmtest.clipping import described, shown
from vnllmtest.evaluation import ScoreJob
from vnllmtest.extensions import Metric
from vnllmtest.judging import Verdict, judge_all, with_verdicts
from vnllmtest.metric_table import checked_value, metric_info
from vnllmtest.outcomes import ItemResult
from vnllmtest.runner import Runner
from vnllmtest.suite import Suite, SuiteSpec


class Scorer(Protocol):
    """One kind of model-graded scoring as the engine runs it."""

    name: str

    def grades(self, spec: SuiteSpec) -> bool:
        """Whether it scores this suite's answers."""
        ...

    def models(self) -> Sequence[ModelSpec]:
        """The models it loads, in order (each once)."""
        ...

    def score(self, model: Backend, jobs: Sequence[ScoreJob], runner: Runner, max_new_tokens: int | None) -> list[Any]:
        """One outcome per job, from one of its models."""
        ...

    def unavailable(self, model: ModelSpec, error: str) -> Any:
        """A job's outcome when the model could not be loaded."""
        ...

    def apply(self, result: ItemResult, outcomes: Sequence[Any], suite: Suite) -> ItemResult:
        """The item's result with its outcomes, one per model, in the order of `models()`."""
        ...


@dataclasses.dataclass(frozen=True)
class JudgeScorer:
    """The LLM judge of suites with a `judge:` block; with several --judge models the first scores and
    the others are compared with it."""

    judges: Sequence[ModelSpec]
    name: str = "judge"

    def grades(self, spec: SuiteSpec) -> bool:
        return spec.judge is not None

    def models(self) -> Sequence[ModelSpec]:
        return self.judges

    def score(self, model: Backend, jobs: Sequence[ScoreJob], runner: Runner, max_new_tokens: int | None) -> list[Any]:
        alias = next((spec.alias for spec in self.judges if spec.label == model.label), None)
        return judge_all(model, jobs, runner, max_new_tokens, alias.judge_limits if alias else None)

    def unavailable(self, model: ModelSpec, error: str) -> Verdict:
        return Verdict(model.label, error=f"judge model error: {error}", judge_failed=True)

    def apply(self, result: ItemResult, outcomes: Sequence[Any], suite: Suite) -> ItemResult:
        assert suite.spec.judge is not None
        return with_verdicts(result, outcomes, suite.spec.judge)


@dataclasses.dataclass(frozen=True)
class MetricScorer:
    """A model-graded metric (vnllmtest.extensions.Metric with a `grader`), scored by its one model. A
    value of None leaves the item unscored on the metric (counted); a model that fails, or a value that
    is not a number in [0, 1], makes the item an error (`scorer_failed`) naming the metric."""

    name: str
    metric: Metric
    model: ModelSpec

    def grades(self, spec: SuiteSpec) -> bool:
        return self.name in spec.graded_metrics

    def models(self) -> Sequence[ModelSpec]:
        return (self.model,)

    def score(self, model: Backend, jobs: Sequence[ScoreJob], runner: Runner, max_new_tokens: int | None) -> list[Any]:
        assert self.metric.grader is not None
        try:
            values = self.metric.grader.score(model, jobs, runner, max_new_tokens)
        except Exception as exc:  # an installed grader's bug fails its items, naming it, not the whole run
            return [f"{self.name}: the grader failed: {type(exc).__name__}: {shown(str(exc))}"] * len(jobs)
        if not isinstance(values, list) or len(values) != len(jobs):
            got = described(values, 80)
            return [f"{self.name}: the grader returned {got} for {len(jobs)} answers, not one value each"] * len(jobs)
        return [None if value is None else _usable(self.name, value) for value in values]

    def unavailable(self, model: ModelSpec, error: str) -> str:
        return f"{self.name}: scorer model error: {error}"

    def apply(self, result: ItemResult, outcomes: Sequence[Any], suite: Suite) -> ItemResult:
        [outcome] = outcomes
        if isinstance(outcome, str):
            message = "; ".join(filter(None, [result.message, outcome]))
            return dataclasses.replace(result, status="error", failure_class="scorer_failed", message=message)
        if outcome is None:
            return result
        return dataclasses.replace(result, metrics={**result.metrics, self.name: outcome})


def metric_scorer(name: str, model_text: str | None, aliases: Mapping[str, Alias]) -> MetricScorer:
    """The scorer of model-graded metric `name`, on `model_text` (--scorer-model) or the grader's
    default model; ModelError when that model spec cannot be read."""
    metric = metric_info(name)
    assert metric.grader is not None
    [spec] = parse_model_specs([model_text or metric.grader.default_model], dict(aliases))
    return MetricScorer(name, metric, dataclasses.replace(spec, label=f"{name}:{spec.label}"))


def _usable(name: str, value: Any) -> float | str:
    """The grader's value for one answer, or the item error it makes when it is not a number in [0, 1]."""
    try:
        return checked_value(name, value)
    except ValueError as exc:
        return f"{name}: {exc}"


def grade(
    scorers: Sequence[Scorer],
    jobs: Sequence[ScoreJob],
    results: Mapping[tuple[str, Any], dict[str, ItemResult]],
    load: Callable[[ModelSpec], Backend],
    runner: Runner,
    max_new_tokens: int | None,
) -> None:
    """Score `jobs` with every scorer that grades their suites, one model at a time, and put the
    outcomes into `results` (keyed by (candidate label, suite path), then item id)."""
    for scorer in scorers:
        mine = [job for job in jobs if scorer.grades(job.suite.spec)]
        if not mine:
            continue
        per_model = [_outcomes(scorer, spec, mine, load, runner, max_new_tokens) for spec in scorer.models()]
        for index, job in enumerate(mine):
            group = results[(job.model, job.suite.path)]
            found = [outcomes[index] for outcomes in per_model]
            group[job.item.id] = scorer.apply(group[job.item.id], found, job.suite)


def _outcomes(
    scorer: Scorer,
    spec: ModelSpec,
    jobs: Sequence[ScoreJob],
    load: Callable[[ModelSpec], Backend],
    runner: Runner,
    max_new_tokens: int | None,
) -> list[Any]:
    try:
        model = load(spec)
    except ModelError as exc:
        return [scorer.unavailable(spec, str(exc)) for _ in jobs]
    try:
        return scorer.score(model, jobs, runner, max_new_tokens)
    finally:
        model.close()
