"""The session engine: the suites collected, each (model, suite) group's results computed in batches
through vnllmtest.evaluation, the model-graded scoring phase (vnllmtest.grading), the run facts each
item's report carries, progress bars. It knows the pytest config (for xdist and output capture) but
declares no hooks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from vnllmtest.backends import LOAD_LOG, Backend, ModelError, ModelSpec, load_backend
from vnllmtest.loaders import BadRecord, Item, LoadedData
from vnllmtest.plugin.progress import show_progress
from vnllmtest.plugin.settings import Settings
from vnllmtest.timing import phase

if TYPE_CHECKING:
    from vnllmtest.grading import Scorer
    from vnllmtest.outcomes import ItemResult
    from vnllmtest.runner import Runner
    from vnllmtest.suite import Suite


class Case(Protocol):
    """What the engine needs of a collected suite item (vnllmtest.plugin.collect.SuiteCase)."""

    suite: Suite
    entry: Item | BadRecord
    model_label: str
    shard: int


class RunState:
    """Everything vnllmtest keeps for one pytest session."""

    def __init__(self, config: pytest.Config, settings: Settings):
        self.config = config
        self.settings = settings
        self.worker_id: str | None = config.workerinput["workerid"] if hasattr(config, "workerinput") else None
        self.suites_by_name: dict[str, Suite] = {}
        self.data: dict[Path, LoadedData] = {}
        self.groups: dict[tuple[str, Path], list[Case]] = {}  # the collected cases by (model, suite)
        self.results: dict[tuple[str, Path], dict[str, ItemResult]] = {}
        self.judged: set[tuple[str, Path]] = set()  # groups whose answers the model-graded scorers have scored
        self.scorers: dict[str, Scorer] = {}  # every scorer a collected suite needs, by name
        self.suites_by_path: dict[Path, Suite] = {}
        self.loads_before = len(LOAD_LOG)  # loads of earlier sessions in this process are not ours
        self.worker_devices: str | None = None  # CUDA_VISIBLE_DEVICES this xdist worker was pinned to
        self.specs_sent: set[Path] = set()  # suites whose spec already went out with one of this process's items
        self.cache_error: str | None = None  # why the prediction cache could not open (xdist workers)
        self._runner: Runner | None = None

    @property
    def is_worker(self) -> bool:
        return self.worker_id is not None

    # --- collection -------------------------------------------------------------------------
    def register(self, suite: Suite, data: LoadedData) -> None:
        from vnllmtest.grading import JudgeScorer
        from vnllmtest.suite import SuiteError

        other = self.suites_by_name.get(suite.name)
        if other is not None and other.path != suite.path:
            raise SuiteError(
                f"{suite.path}: suite name '{suite.name}' is already used by {other.path}; names must be unique"
            )
        if suite.spec.judge is not None:
            self.scorers.setdefault("judge", JudgeScorer(self.settings.judge_specs))
        for name in suite.spec.graded_metrics:
            try:
                self.scorers.setdefault(name, self.settings.metric_scorer(name))
            except ModelError as exc:
                raise SuiteError(f"{suite.path}: metric '{name}': its scoring model: {exc}") from None
        self.suites_by_name[suite.name] = suite
        self.suites_by_path[suite.path] = suite
        self.data[suite.path] = data

    def index_cases(self, cases: Sequence[Case]) -> None:
        """Group the session's cases by (model, suite), in collection order."""
        self.groups = {}
        for case in cases:
            self.groups.setdefault((case.model_label, case.suite.path), []).append(case)

    # --- evaluation -------------------------------------------------------------------------
    @property
    def runner(self) -> Runner:
        """The session's runner; its cache opens on first use (raises CacheError if it cannot)."""
        if self._runner is None:
            from vnllmtest.cache import PredictionCache
            from vnllmtest.runner import Runner

            settings = self.settings
            self._runner = Runner(
                PredictionCache(settings.cache_dir) if settings.cache_dir else None,
                settings.batch_size,
                show_progress(self.config, self.worker_id),
                refresh=settings.refresh_cache,
                max_output_bytes=settings.server.max_reply_bytes,
            )
        return self._runner

    def result(self, backend: Backend, case: Case) -> ItemResult:
        """The item's result, computing its whole (model, suite) group on first use. The first use of a
        model also computes its model-graded suites (their items run last, after every model), so that
        their scorers score every candidate without loading any model twice."""
        key = (backend.label, case.suite.path)
        if case.entry.id not in self.results.get(key, {}):
            self._compute(backend, case.suite.path, case.shard)
            if not self.is_worker:
                for path in self._judged_paths(backend.label):
                    if (backend.label, path) not in self.results:
                        self._compute(backend, path)
        if case.suite.spec.model_graded and key not in self.judged:
            self._grading_phase(backend, [key] if self.is_worker else None)
        return self.results[key][case.entry.id]

    def _members(self, label: str, path: Path, shard: int | None = None) -> list[Item | BadRecord]:
        """The group's entries (only one shard's, when given), in collection order."""
        return [case.entry for case in self.groups.get((label, path), ()) if shard in (None, case.shard)]

    def _compute(self, backend: Backend, path: Path, shard: int | None = None) -> None:
        from vnllmtest.evaluation import evaluate

        suite, data = self.suites_by_path[path], self.data[path]
        members = self._members(backend.label, path, shard)
        settings = self.settings
        with phase("score"):
            found = evaluate(backend, suite, data, members, self.runner, settings.max_new_tokens, settings.thinking)
        self.results.setdefault((backend.label, path), {}).update(found)

    def _judged_paths(self, label: str) -> list[Path]:
        graded = self.suites_by_path.items()
        return [path for path, suite in graded if suite.spec.model_graded and self._members(label, path)]

    def _grading_phase(self, active: Backend, keys: list[tuple[str, Path]] | None) -> None:
        """Candidates first (a model not yet run is loaded once, here), then every candidate unloaded,
        then each scorer's models (the judges, a model-graded metric's model) loaded once to score all
        answers, then unloaded (the single-GPU protocol)."""
        from vnllmtest.evaluation import ScoreJob
        from vnllmtest.grading import grade

        settings = self.settings
        if keys is None:
            keys = [(spec.label, path) for spec in settings.specs for path in self._judged_paths(spec.label)]
        for spec in settings.specs:
            missing = [path for label, path in keys if label == spec.label and (label, path) not in self.results]
            if missing:
                backend = active if spec.label == active.label else load_backend(spec, settings.hf, settings.server)
                for path in missing:
                    self._compute(backend, path)
                if backend is not active:
                    backend.close()
        active.close()  # the candidate's weights leave before the scorers' arrive
        jobs = [
            ScoreJob(self.suites_by_path[path], entry, label, result.output or "")
            for label, path in keys
            for entry in self._members(label, path)
            if isinstance(entry, Item) and (result := self.results[(label, path)][entry.id]).status != "error"
        ]

        def load(spec: ModelSpec) -> Backend:
            try:
                return load_backend(spec, settings.hf, settings.server)
            except ModelError as exc:
                if spec in settings.judge_specs and not self.config.getoption("judge"):
                    raise ModelError(f"{exc}. It is the default judge: choose another with --judge SPEC") from None
                raise

        with phase("judge"):
            grade(list(self.scorers.values()), jobs, self.results, load, self.runner, settings.max_new_tokens)
        self.judged.update(keys)

    # --- run facts ----------------------------------------------------------------------------
    def context(self, case: Case, backend: Backend | None) -> dict[str, Any]:
        """Run facts that travel with each item's report, for the manifest."""
        data = self.data[case.suite.path]
        spec = next(s for s in self.settings.specs if s.label == case.model_label)
        sampling = case.suite.spec.dataset.sampling
        return {
            "suite": case.suite.name,
            "suite_path": str(case.suite.path),
            "suite_sha256": case.suite.sha256,
            "data_origin": data.origin,
            "records_total": data.total,
            "records_selected": len(data.entries),
            "suite_items": data.planned,
            **self._spec_once(case.suite),
            "sampling": sampling.model_dump() if sampling and self.settings.data.mode == "full" else None,
            "data_notes": list(data.notes),
            "model": case.model_label,
            "model_spec": spec.text,
            "model_fingerprint": backend.fingerprint if backend else None,
            "model_device": backend.device_name if backend else None,
            "model_load": _last_load(case.model_label, self.loads_before),
            "judges": {  # the models that scored this suite's answers after the candidates
                model.label: {"spec": model.text, "load": _last_load(model.label, self.loads_before)}
                for scorer in self.scorers.values()
                if scorer.grades(case.suite.spec)
                for model in scorer.models()
            },
            "batch_back_offs": [dataclasses.asdict(b) for b in self._runner.back_offs] if self._runner else [],
            "cache": self._cache_state(),
            "worker": {"id": self.worker_id, "devices": self.worker_devices} if self.is_worker else None,
        }

    def _cache_state(self) -> dict[str, Any]:
        cache = self._runner.cache if self._runner else None
        return {"fault": cache.fault, "malformed": cache.malformed} if cache else {}

    def _spec_once(self, suite: Suite) -> dict[str, Any]:
        """The suite's validated spec as collected, with the first item this process reports of it: the
        controller builds the gates from it, never from the file, which may have changed since."""
        if suite.path in self.specs_sent:
            return {}
        self.specs_sent.add(suite.path)
        return {"suite_spec": suite.spec.model_dump(mode="json")}


def _last_load(label: str, since: int) -> dict[str, Any] | None:
    """The latest load of this model's weights in this session (LOAD_LOG entries after `since`)."""
    for number, event in reversed(list(enumerate(LOAD_LOG[since:], start=1))):
        if event.label == label:
            return {"pid": event.pid, "number": number, "seconds": round(event.seconds, 3)}
    return None
