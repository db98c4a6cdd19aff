"""Extension points: dataset adapters, model backends and metrics, each in one registry by name.

A registry holds the package's own entries, written like entry points ("module:attribute", imported
on first use), and those installed packages declare under the entry-point groups `vnllmtest.adapters`,
`vnllmtest.backends` and `vnllmtest.metrics`. Suite validation, model specs and scoring read names
from these registries only. docs/architecture.md has the recipes.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vnllmtest.backends.base import Backend
    from vnllmtest.runner import Runner

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # also the prefix of a backend kind in --model NAME:...


class ExtensionError(Exception):
    """An unknown name, or an installed extension that cannot be loaded or has the wrong type."""


@dataclass(frozen=True)
class DatasetAdapter:
    """A dataset record format. `to_item(record: RawRecord, options) -> Item` raises RecordError for a
    bad record; `read_records(path, root: DataRoot)` (default: vnllmtest.loaders.sources.read_file, which
    reads JSON Lines, JSON, CSV and Parquet) yields RawRecords; `options` lists the suite's
    `dataset.options` the adapter understands with their allowed values; `content_ids`: ids derived
    from content, so an exact repeat is the same item rather than a conflict."""

    to_item: Callable[..., Any]
    read_records: Callable[..., Any] | None = None
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_ids: bool = False


@dataclass(frozen=True)
class BackendKind:
    """Models chosen by the prefix `NAME:` of a --model value. `parse(text, target) -> ModelSpec` reads
    the value (default: the label is the target, cleaned); `load(spec, hf_settings, server_settings)
    -> Backend` loads the model, raising ModelError when it cannot."""

    load: Callable[..., Backend]
    parse: Callable[..., Any] | None = None


class GradingModel(Protocol):
    """How a model-graded metric scores finished answers with a model of its own. The model is
    `default_model` (a --model style spec) unless `--scorer-model METRIC=SPEC` names another; it is
    loaded once, after every candidate model has run and been unloaded."""

    default_model: str

    def score(
        self, model: Backend, jobs: Sequence[Any], runner: Runner, max_new_tokens: int | None
    ) -> list[float | None]:
        """One value in [0, 1] per job (a vnllmtest.evaluation.ScoreJob: suite, item, candidate label,
        output), or None where the answer could not be scored (counted as unscored, never dropped)."""
        ...


@dataclass(frozen=True)
class Metric:
    """What a metric name means. `kind` picks the paired test against a baseline (binary: McNemar when
    items are independent; continuous: a sign-flip permutation test); every metric is aggregated as
    the mean over items (resampling clusters where the suite declares them), reported on `scale`
    (points: item values in [0, 1] shown as 0-100; rubric: the judge's scale). `version` goes up
    whenever the computation changes; runs made under other versions are not compared on it.

    A metric is computed in one of four ways: `compute(answer, references, abstentions) -> float` from
    the answer text (generative tasks); `grader`, a model-graded metric (generative tasks); by
    multiple-choice scoring in the scoring modes `choice_modes`; or, with none of these, by the judge.
    `requires` names top-level modules the computation imports that may be missing (an optional extra), and
    `install` how to get them: a suite that lists the metric where one is missing does not load."""

    kind: Literal["binary", "continuous"]
    scale: Literal["points", "rubric"]
    version: int
    summary: str
    compute: Callable[[str, Sequence[str], Sequence[str]], float] | None = None
    grader: GradingModel | None = None
    choice_modes: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    install: str = ""

    def missing_modules(self) -> list[str]:
        """The modules of `requires` that are not installed here (looked up, not imported)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    @property
    def declarable(self) -> bool:
        """Whether a suite may list it under `metrics` (judge metrics come with `judge:` instead)."""
        return bool(self.compute or self.grader or self.choice_modes)


class Registry(Generic[T]):
    """Named entries of one type: the package's own, then those of installed packages. An installed
    entry's name is lowercase letters, digits and underscores; it may not repeat a built-in name, start
    with a `reserved` prefix, or be declared twice; `check` may refuse what an installed entry holds."""

    def __init__(
        self,
        group: str,
        what: str,
        kind: type,
        builtins: Mapping[str, str],
        reserved: tuple[str, ...] = (),
        check: Callable[[T], str | None] | None = None,
    ):
        self.group, self.what, self.kind = group, what, kind
        self._builtins = dict(builtins)
        self._reserved, self._check = reserved, check
        self._installed: dict[str, metadata.EntryPoint] | None = None
        self._loaded: dict[str, T] = {}

    def names(self) -> list[str]:
        return sorted({*self._builtins, *self._entry_points()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._builtins or name in self._entry_points())

    def get(self, name: str) -> T:
        """The entry called `name`; ExtensionError naming the known ones when there is none."""
        if name not in self._loaded:
            installed = self._entry_points()  # refuses badly named installed entries first
            if name in self._builtins:
                self._loaded[name] = self._checked(name, self._builtins[name], _load_reference)
            elif name in installed:
                point = installed[name]
                found = self._checked(name, point.value, lambda _: point.load())
                problem = self._check(found) if self._check else None
                if problem:
                    raise ExtensionError(f"{self.what} '{name}' ({point.value}): {problem}")
                self._loaded[name] = found
            else:
                raise ExtensionError(f"unknown {self.what} '{name}'; known: {', '.join(self.names())}")
        return self._loaded[name]

    def _checked(self, name: str, where: str, load: Callable[[str], Any]) -> T:
        try:
            found = load(where)
        except Exception as exc:  # an installed package's import error must name the package
            raise ExtensionError(f"{self.what} '{name}' ({where}) could not be loaded: {exc}") from None
        if not isinstance(found, self.kind):
            raise ExtensionError(
                f"{self.what} '{name}' ({where}) is a {type(found).__name__}, not a vnllmtest {self.kind.__name__}"
            )
        return found

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._installed is None:
            found: dict[str, metadata.EntryPoint] = {}
            for point in metadata.entry_points(group=self.group):
                problem = self._name_problem(point.name, found)
                if problem:
                    raise ExtensionError(f"entry point '{point.name} = {point.value}' (group {self.group}) {problem}")
                found[point.name] = point
            self._installed = found
        return self._installed

    def _name_problem(self, name: str, seen: Mapping[str, metadata.EntryPoint]) -> str | None:
        if name in self._builtins:
            return f"would replace vnllmtest's own {self.what} '{name}'; give it another name"
        if name in seen:
            return f"repeats the name of '{name} = {seen[name].value}'; installed {self.what}s need distinct names"
        if not _NAME.match(name):
            return "has a name vnllmtest cannot use: lowercase letters, digits and _, starting with a letter"
        reserved = next((prefix for prefix in self._reserved if name.startswith(prefix)), None)
        if reserved:
            return f"has a name starting with '{reserved}', which vnllmtest keeps for its own {self.what}s"
        return None


def _installed_metric_problem(metric: Metric) -> str | None:
    """Installed metrics are computed from the answer or by a model (multiple-choice scoring is vnllmtest's), and
    require top-level modules only."""
    if metric.choice_modes or not (metric.compute or metric.grader):
        return "an installed metric needs `compute` (from the answer) or `grader` (model-graded), not `choice_modes`"
    dotted = [name for name in metric.requires if not name.isidentifier()]
    if dotted:
        return f"`requires` names top-level modules (looked up without importing them), not {dotted[0]!r}"
    return None


def _load_reference(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


ADAPTERS: Registry[DatasetAdapter] = Registry(
    "vnllmtest.adapters",
    "dataset adapter",
    DatasetAdapter,
    {
        "vmlu": "vnllmtest.loaders.vmlu:ADAPTER",
        "squad_v2": "vnllmtest.loaders.squad:ADAPTER",
        "vims": "vnllmtest.loaders.vims:ADAPTER",
        "vtsnlp": "vnllmtest.loaders.vtsnlp:ADAPTER",
    },
)
BACKENDS: Registry[BackendKind] = Registry(
    "vnllmtest.backends",
    "model backend",
    BackendKind,
    {
        "hf": "vnllmtest.backends.kinds:HF",
        "openai": "vnllmtest.backends.kinds:OPENAI",
        "replay": "vnllmtest.backends.kinds:REPLAY",
    },
)
METRICS: Registry[Metric] = Registry(
    "vnllmtest.metrics",
    "metric",
    Metric,
    reserved=("judge_",),
    check=_installed_metric_problem,
    builtins={
        "accuracy": "vnllmtest.metric_table:ACCURACY",
        "accuracy_loglik": "vnllmtest.metric_table:ACCURACY_LOGLIK",
        "mode_agreement": "vnllmtest.metric_table:MODE_AGREEMENT",
        "exact_match": "vnllmtest.metric_table:EXACT_MATCH",
        "f1": "vnllmtest.metric_table:F1",
        "rouge_1": "vnllmtest.metric_table:ROUGE_1",
        "rouge_2": "vnllmtest.metric_table:ROUGE_2",
        "rouge_l": "vnllmtest.metric_table:ROUGE_L",
        "f1_word": "vnllmtest.metric_table:F1_WORD",
        "rouge_1_word": "vnllmtest.metric_table:ROUGE_1_WORD",
        "rouge_2_word": "vnllmtest.metric_table:ROUGE_2_WORD",
        "rouge_l_word": "vnllmtest.metric_table:ROUGE_L_WORD",
        "verdict_coverage": "vnllmtest.metric_table:VERDICT_COVERAGE_METRIC",
        "judge_score": "vnllmtest.metric_table:JUDGE_SCORE_METRIC",
        "judge_overall": "vnllmtest.metric_table:JUDGE_OVERALL_METRIC",
    },
)
