"""pytest plugin: options, YAML suite collection, model fixtures, item outcomes, gates, reports, exit code.

Every dataset record of a suite becomes one test item per `--model`. The items are ordinary
pytest Functions parametrized by the session-scoped `vnllm_model` fixture, so pytest groups them
by model and finishes (unloads) one model before it loads the next. The first item of a
(model, suite) group computes the whole group in batches; each item then checks its own result.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _pytest.python import FunctionDefinition, Metafunc

from vnllmtest.aggregate import GroupSummary, summarize
from vnllmtest.backends import (
    LOAD_LOG,
    Backend,
    HFSettings,
    ModelError,
    ModelSpec,
    ServerSettings,
    load_backend,
    parse_model_specs,
)
from vnllmtest.cache import CacheError, PredictionCache
from vnllmtest.clipping import clip
from vnllmtest.comparison import Comparison, check_pairing, compare
from vnllmtest.evaluation import ItemResult, error_result, evaluate, prompt_constants
from vnllmtest.gates import GatesVerdict, RunScope, gate_outcome
from vnllmtest.judging import JudgeJob, Verdict, judge_all, with_verdicts
from vnllmtest.loaders import (
    BadRecord,
    DataError,
    DataOptions,
    Item,
    LoadedData,
    load_data,
)
from vnllmtest.manifest import build_manifest
from vnllmtest.options import DEFAULT_JUDGE, DEFAULT_MODEL, add_options, model_aliases
from vnllmtest.prompts import limit_error, unknown_fields
from vnllmtest.pytest_outputs import gates_to_junit, show_comparison, show_coverage, write_table
from vnllmtest.report import new_run_folder, run_gates_verdict, write_failure_summary, write_run
from vnllmtest.runner import Runner
from vnllmtest.stored_run import BaselineError, StoredRun, load_run
from vnllmtest.suite import Suite, SuiteError, SuiteSpec, is_suite_file, load_suite

PROPERTY = "vnllmtest"
STATE = pytest.StashKey["RunState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vnllmtest: an item of a vnllmtest YAML suite")
    for option in ("limit", "max_new_tokens", "bootstrap_iterations", "concurrency", "shard_size"):
        value = config.getoption(option)
        if value is not None and value < 1:
            raise pytest.UsageError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    try:
        aliases = model_aliases(config)
        specs = parse_model_specs(config.getoption("model") or [DEFAULT_MODEL], aliases)
        judges = parse_model_specs(config.getoption("judge") or [DEFAULT_JUDGE], aliases)
    except ModelError as exc:
        raise pytest.UsageError(str(exc)) from None
    state = RunState(config, specs, [dataclasses.replace(judge, label=f"judge:{judge.label}") for judge in judges])
    config.stash[STATE] = state
    if not state.is_worker:
        config.pluginmanager.register(ResultCollector(state), "vnllmtest-results")
    else:
        state.worker_devices = pin_worker_device(config.workerinput["workerid"])
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistScheduling(), "vnllmtest-xdist")


class ItemMissed(Exception):
    """The model's answer to this item is wrong (a miss, not a run failure unless --strict-items)."""


class ItemErrored(Exception):
    """This item could not be evaluated (bad record, bad prompt, model failure)."""


class RunState:
    """Everything vnllmtest keeps for one pytest session."""

    def __init__(self, config: pytest.Config, specs: list[ModelSpec], judge_specs: list[ModelSpec]):
        self.config = config
        self.specs = specs
        self.judge_specs = judge_specs
        self.is_worker = hasattr(config, "workerinput")
        self.data_options = DataOptions.from_environment(
            config.getoption("data"),
            config.getoption("data_dir"),
            config.getoption("limit"),
            config.getoption("allow_outside_data"),
        )
        option = config.getoption
        self.hf_settings = HFSettings(
            device=option("device"),
            dtype=option("dtype"),
            quant=option("quant"),
            max_memory=option("max_memory"),
            trust_remote_code=option("trust_remote_code"),
        )
        self.thinking = None if option("thinking") is None else option("thinking") == "on"
        self.server_settings = ServerSettings(
            api_key_env=option("api_key_env"),
            concurrency=option("concurrency"),
            timeout=option("request_timeout"),
            retries=max(0, option("retries")),
            max_reply_bytes=option("max_reply_bytes"),
        )
        self.suites_by_name: dict[str, Suite] = {}
        self.data: dict[Path, LoadedData] = {}
        self.groups: dict[tuple[str, Path], list[SuiteCase]] = {}  # the collected cases by (model, suite)
        self.results: dict[tuple[str, Path], dict[str, ItemResult]] = {}
        self.judged: set[tuple[str, Path]] = set()  # groups whose answers the judges have scored
        self.suites_by_path: dict[Path, Suite] = {}
        self.loads_before = len(LOAD_LOG)  # loads of earlier sessions in this process are not ours
        self.worker_devices: str | None = None  # CUDA_VISIBLE_DEVICES this xdist worker was pinned to
        self.specs_sent: set[Path] = set()  # suites whose spec already went out with one of this process's items
        self.cache_error: str | None = None  # why the prediction cache could not open (xdist workers)
        self._runner: Runner | None = None

    # --- collection -------------------------------------------------------------------------
    def register(self, suite: Suite, data: LoadedData) -> None:
        other = self.suites_by_name.get(suite.name)
        if other is not None and other.path != suite.path:
            raise SuiteError(
                f"{suite.path}: suite name '{suite.name}' is already used by {other.path}; names must be unique"
            )
        self.suites_by_name[suite.name] = suite
        self.suites_by_path[suite.path] = suite
        self.data[suite.path] = data

    # --- evaluation -------------------------------------------------------------------------
    @property
    def runner(self) -> Runner:
        """The session's runner; its cache opens on first use (raises CacheError if it cannot)."""
        if self._runner is None:
            cache = None
            if not self.config.getoption("no_cache"):
                folder = self.config.getoption("cache_dir") or self.config.rootpath / ".vnllmtest-cache"
                cache = PredictionCache(Path(folder))
            option = self.config.getoption
            self._runner = Runner(
                cache,
                option("batch_size"),
                self._progress,
                refresh=option("refresh_cache"),
                max_output_bytes=option("max_reply_bytes"),
            )
        return self._runner

    def result(self, backend: Backend, case: SuiteCase) -> ItemResult:
        """The item's result, computing its whole (model, suite) group on first use. The first use of a
        model also computes its judged suites (their items run last, after every model), so that the
        judge can score every candidate without loading any model twice."""
        key = (backend.label, case.suite.path)
        if case.entry.id not in self.results.get(key, {}):
            self._compute(backend, case.suite.path, case.shard)
            if not self.is_worker:
                for path in self._judged_paths(backend.label):
                    if (backend.label, path) not in self.results:
                        self._compute(backend, path)
        if case.suite.spec.judge is not None and key not in self.judged:
            self._judge_phase(backend, [key] if self.is_worker else None)
        return self.results[key][case.entry.id]

    def index_cases(self, items: list[pytest.Item]) -> None:
        """Group the session's cases by (model, suite), in collection order."""
        self.groups = {}
        for item in items:
            if isinstance(item, SuiteCase):
                self.groups.setdefault((item.model_label, item.suite.path), []).append(item)

    def _members(self, label: str, path: Path, shard: int | None = None) -> list[Item | BadRecord]:
        """The group's entries (only one shard's, when given), in collection order."""
        return [case.entry for case in self.groups.get((label, path), ()) if shard in (None, case.shard)]

    def _compute(self, backend: Backend, path: Path, shard: int | None = None) -> None:
        suite, data = self.suites_by_path[path], self.data[path]
        cap = self.config.getoption("max_new_tokens")
        members = self._members(backend.label, path, shard)
        found = evaluate(backend, suite, data, members, self.runner, cap, self.thinking)
        self.results.setdefault((backend.label, path), {}).update(found)

    def _judged_paths(self, label: str) -> list[Path]:
        return [path for path, suite in self.suites_by_path.items() if suite.spec.judge and self._members(label, path)]

    def _judge_phase(self, active: Backend, keys: list[tuple[str, Path]] | None) -> None:
        """Candidates first (a model not yet run is loaded once, here), then every candidate unloaded,
        then each judge loaded once to score all answers, then unloaded (the single-GPU protocol)."""
        if keys is None:
            keys = [(spec.label, path) for spec in self.specs for path in self._judged_paths(spec.label)]
        for spec in self.specs:
            missing = [path for label, path in keys if label == spec.label and (label, path) not in self.results]
            if missing:
                backend = (
                    active if spec.label == active.label else load_backend(spec, self.hf_settings, self.server_settings)
                )
                for path in missing:
                    self._compute(backend, path)
                if backend is not active:
                    backend.close()
        active.close()  # the candidate's weights leave before the judge's arrive
        jobs = [
            JudgeJob(self.suites_by_path[path], entry, label, result.output or "")
            for label, path in keys
            for entry in self._members(label, path)
            if isinstance(entry, Item) and (result := self.results[(label, path)][entry.id]).status != "error"
        ]
        verdicts = [self._verdicts(judge, jobs) for judge in self.judge_specs]
        for index, job in enumerate(jobs):
            group = self.results[(job.model, job.suite.path)]
            mine = [per_judge[index] for per_judge in verdicts]
            group[job.item.id] = with_verdicts(group[job.item.id], mine, job.suite.spec.judge)
        self.judged.update(keys)

    def _verdicts(self, spec: ModelSpec, jobs: list[JudgeJob]) -> list[Verdict]:
        try:
            judge = load_backend(spec, self.hf_settings, self.server_settings)
        except ModelError as exc:
            return [Verdict(spec.label, error=f"judge model error: {exc}", judge_failed=True) for _ in jobs]
        try:
            return judge_all(judge, jobs, self.runner, self.config.getoption("max_new_tokens"))
        finally:
            judge.close()

    def context(self, case: SuiteCase, backend: Backend | None) -> dict[str, Any]:
        """Run facts that travel with each item's report, for the manifest."""
        data = self.data[case.suite.path]
        spec = next(s for s in self.specs if s.label == case.model_label)
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
            "sampling": sampling.model_dump() if sampling and self.data_options.mode == "full" else None,
            "data_notes": list(data.notes),
            "model": case.model_label,
            "model_spec": spec.text,
            "model_fingerprint": backend.fingerprint if backend else None,
            "model_device": backend.device_name if backend else None,
            "model_load": _last_load(case.model_label, self.loads_before),
            "judges": {
                judge.label: {"spec": judge.text, "load": _last_load(judge.label, self.loads_before)}
                for judge in self.judge_specs
                if case.suite.spec.judge is not None
            },
            "batch_back_offs": [dataclasses.asdict(b) for b in self._runner.back_offs] if self._runner else [],
            "cache": self._cache_state(),
            "worker": {"id": self.config.workerinput["workerid"], "devices": self.worker_devices}
            if self.is_worker
            else None,
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

    @contextmanager
    def _progress(self, description: str, total: int) -> Iterator[Any]:
        if self.is_worker or total == 0:
            yield lambda done: None
            return
        from tqdm import tqdm

        capture = self.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else nullcontext():
            sys.stderr.write("\n")
            with tqdm(total=total, desc=description, unit="item", file=sys.stderr, mininterval=1.0) as bar:
                yield bar.update

    # --- reporting ----------------------------------------------------------------------------
    def options_for_manifest(self) -> dict[str, Any]:
        option = self.config.getoption
        return {
            "argv": list(self.config.invocation_params.args),
            "data": self.data_options.mode,
            "data_dir": str(self.data_options.data_dir) if self.data_options.data_dir else None,
            "allow_outside_data": self.data_options.allow_outside,
            "limit": self.data_options.limit,
            "batch_size": option("batch_size"),
            "concurrency": option("concurrency"),
            "request_timeout": option("request_timeout"),
            "max_reply_bytes": option("max_reply_bytes"),
            "max_new_tokens": option("max_new_tokens"),
            "device": option("device"),
            "dtype": option("dtype"),
            "cache": not option("no_cache"),
            "refresh_cache": option("refresh_cache"),
            "quant": option("quant"),
            "max_memory": option("max_memory"),
            "thinking": option("thinking"),
            "trust_remote_code": option("trust_remote_code"),
            "strict_items": option("strict_items"),
            "require_gates": option("require_gates"),
            "bootstrap_iterations": option("bootstrap_iterations"),
            "bootstrap_seed": 0,
        }


class SuiteFile(pytest.Module):
    """A YAML suite file: one test item per (model, selected record)."""

    def _getobj(self) -> types.ModuleType:
        module = types.ModuleType(f"vnllmtest_suite_{self.path.stem}")
        module.__file__ = str(self.path)
        return module

    def collect(self) -> Iterator[pytest.Item]:
        state = self.config.stash[STATE]
        try:
            suite = load_suite(self.path)
            data = load_data(suite, state.data_options)
            _check_template_fields(suite, data)
            state.register(suite, data)
        except (SuiteError, DataError) as exc:
            raise self.CollectError(str(exc)) from None
        for marker in (suite.name, suite.spec.task.value):
            self.config.addinivalue_line("markers", f"{marker}: vnllmtest suite or task type")
            self.add_marker(marker)
        self.add_marker("vnllmtest")
        definition = FunctionDefinition.from_parent(self, name=suite.name, callobj=_evaluate_case)
        metafunc = Metafunc(definition, definition._fixtureinfo, self.config, cls=None, module=self.obj, _ispytest=True)
        self.ihook.pytest_generate_tests.call_extra([], {"metafunc": metafunc})
        shard_size = None if suite.spec.judge else self.config.getoption("shard_size")
        for callspec in metafunc._calls:
            for position, entry in enumerate(data.entries):
                case_id = f"{callspec.id}:{entry.id}"
                case = SuiteCase.from_parent(
                    self,
                    name=f"{suite.name}[{case_id}]",
                    callobj=_evaluate_case,
                    callspec=dataclasses.replace(callspec, _idlist=[case_id]),
                    fixtureinfo=definition._fixtureinfo,
                    originalname=suite.name,
                )
                case.extra_keyword_matches.update(f"{t}_{v}".replace(" ", "_") for t, v in entry.tags.items())
                case.suite, case.entry, case.model_label = suite, entry, callspec.params["vnllm_model"].label
                case.shard = position // shard_size if shard_size else 0
                yield case


def _check_template_fields(suite: Suite, data: LoadedData) -> None:
    items = [entry for entry in data.entries if isinstance(entry, Item)]
    missing = unknown_fields(suite.spec.prompt, items, prompt_constants(suite.spec))
    if items and missing:
        fields = sorted({name for item in items for name in item.fields})
        raise SuiteError(
            f"{suite.path}: prompt.template uses {', '.join(repr(name) for name in missing)}, which no record "
            f"of {data.origin} has; the records have fields {', '.join(fields)}. "
            "To fix: use one of those fields in the template, or add the field to the data."
        )
    if items and (limit := limit_error(suite.spec.prompt, data.pool, items[0], prompt_constants(suite.spec))):
        raise SuiteError(f"{suite.path}: {limit} (found rendering the first record, {items[0].id}, at collection)")


def _last_load(label: str, since: int) -> dict[str, Any] | None:
    """The latest load of this model's weights in this session (LOAD_LOG entries after `since`)."""
    for number, event in reversed(list(enumerate(LOAD_LOG[since:], start=1))):
        if event.label == label:
            return {"pid": event.pid, "number": number, "seconds": round(event.seconds, 3)}
    return None


class SuiteCase(pytest.Function):
    """One dataset record evaluated by one model."""

    suite: Suite
    entry: Item | BadRecord
    model_label: str
    shard: int  # with --shard-size, which slice of its (suite, model) group the item belongs to

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        if isinstance(excinfo.value, ItemMissed | ItemErrored):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def _evaluate_case(vnllm_model: Backend, request: pytest.FixtureRequest) -> None:
    """The body of every suite item: look up (or trigger) its batched result and judge it."""
    case: SuiteCase = request.node
    state = request.config.stash[STATE]
    if state.cache_error:
        raise ItemErrored(f"ERROR cache_error: {state.cache_error}")
    result = state.result(vnllm_model, case)
    payload = {"item": result.to_record(), "context": state.context(case, vnllm_model)}
    case.user_properties.append((PROPERTY, json.dumps(payload, ensure_ascii=False)))
    case.user_properties += [(f"metric.{name}", value) for name, value in result.metrics.items()]
    if result.status == "error":
        raise ItemErrored(f"ERROR {result.failure_class}: {clip(result.message or '', 4000)}")
    if result.status == "missed":
        raise ItemMissed(_miss_detail(result))


def _miss_detail(result: ItemResult, limit: int = 1500) -> str:
    """What the terminal shows of a missed item; every text is cut to `limit` characters around the middle."""

    def as_json(value: Any) -> str:
        return clip(json.dumps(value, ensure_ascii=False), limit)

    metrics = ", ".join(f"{name}={value:.3f}" for name, value in result.metrics.items())
    lines = [
        f"MISSED ({result.failure_class}) {result.suite} [{result.model}] item {result.id} ({result.origin})",
        f"reference: {as_json(result.references)}",
        f"output:    {as_json(result.output)}",
        f"answer:    {as_json(result.answer)}",
        f"metrics:   {metrics}",
    ]
    if result.choice_logprobs:
        scores = ", ".join(f"{label}={value:.2f}" for label, value in result.choice_logprobs.items())
        lines.append(f"option log-probabilities: {scores}")
    for verdict in result.judges:
        given = ", ".join(f"{k}={v:g}" for k, v in (verdict["scores"] or {}).items()) or verdict["error"]
        lines.append(f"judge {verdict['judge']}: {given}; rationale: {clip(verdict['rationale'] or '—', limit)}")
        if verdict["error"] and verdict["raw_outputs"]:
            lines.append(f"judge output: {as_json(verdict['raw_outputs'][-1][:500])}")
    lines += [f"finish: {result.finish_reason}, mode: {result.mode}, cache key: {result.cache_key}", "prompt:"]
    return "\n".join([*lines, clip(result.prompt or "", limit)])


@pytest.fixture(scope="session")
def vnllm_runner(request: pytest.FixtureRequest) -> Runner:
    """The session's batching, caching runner, for custom checks in users' own test files."""
    return request.config.stash[STATE].runner


@pytest.fixture(scope="session")
def vnllm_model(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The model under test, loaded once per process and unloaded before the next one loads."""
    spec: ModelSpec = request.param
    try:
        state = request.config.stash[STATE]
        backend = load_backend(spec, state.hf_settings, state.server_settings)
    except ModelError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield backend
    finally:
        backend.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vnllm_model" in metafunc.fixturenames:
        specs = metafunc.config.stash[STATE].specs
        metafunc.parametrize("vnllm_model", specs, ids=[s.label for s in specs], indirect=True, scope="session")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Items of judged suites run last, after every model's other items, so the judge is loaded after
    all candidates are done (each group keeps its model order)."""
    judged = [item for item in items if isinstance(item, SuiteCase) and item.suite.spec.judge is not None]
    if judged:
        moved = set(map(id, judged))
        items[:] = [item for item in items if id(item) not in moved] + judged


def pytest_collection_finish(session: pytest.Session) -> None:
    """Index the suite cases; when there are any, the prediction cache must open before any model loads
    (only then: every pytest run where vnllmtest is installed comes through here)."""
    state = session.config.stash[STATE]
    state.index_cases(session.items)
    if not state.groups or session.config.option.collectonly:
        return
    try:
        state.runner
    except CacheError as exc:
        if not state.is_worker:
            raise pytest.UsageError(str(exc)) from None
        state.cache_error = str(exc)  # an xdist worker: its items error at once, naming the file and the fix


def _check_writable(folder: Path, option: str) -> None:
    """Fail before any model loads when files could not be created in `folder` (or the folder itself):
    a file is created in the nearest folder that exists and removed at once, since permission bits
    do not stop root while read-only mounts still do."""
    existing = folder.resolve()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise pytest.UsageError(f"{option}: {existing} is not a writable folder ({exc})") from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if isinstance(item, SuiteCase) and report.failed and report.when != "teardown" and _payload(report) is None:
        # the model could not be set up, or something failed before the item had a result: still an item record
        state = item.config.stash[STATE]
        message = call.excinfo.exconly() if call.excinfo else str(report.longrepr)
        failure_class = "model_error" if report.when == "setup" else "internal_error"
        result = error_result(item.suite, item.model_label, item.entry, failure_class, message)
        payload = {"item": result.to_record(), "context": state.context(item, None)}
        report.user_properties.append((PROPERTY, json.dumps(payload, ensure_ascii=False)))
    return report


def _payload(report: pytest.TestReport) -> dict[str, Any] | None:
    for name, value in report.user_properties:
        if name == PROPERTY:
            return json.loads(value)
    return None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    if report.when == "call" and report.failed:
        payload = _payload(report)
        if payload and payload["item"]["status"] == "missed":
            return "missed", "m", ("MISSED", {"yellow": True})
    return None


class ResultCollector:
    """Where test reports arrive (the single process, or the xdist controller): gathers every
    item's result, then aggregates, writes the run report, prints the gates and sets the exit code."""

    def __init__(self, state: RunState):
        self.state = state
        self.config = state.config
        self.records: list[dict[str, Any]] = []
        self.misses: list[tuple[str, str]] = []  # (node id, detail) of missed items
        self.hard_failures = 0  # failures that are not item misses: errors, crashes, collection
        self.other_failures: list[str] = []  # node ids of failures that are neither an item nor a suite file
        self.cache_faults: list[str] = []  # how the prediction cache failed mid-run, from every process
        self.cache_recomputed = 0  # malformed cache entries that were computed again
        self.collection_errors: list[dict[str, str]] = []  # suites (or files) that could not be collected
        self.started = datetime.now(timezone.utc)
        self.summaries: list[GroupSummary] = []
        self.run_folder: Path | None = None
        self.report_error: str | None = None
        self.baseline: StoredRun | None = None
        self.comparison: Comparison | None = None
        self.nodeids: dict[tuple[str, str, str], str] = {}  # (suite, model, item id) -> node id
        self.interrupted = False
        self.verdict: GatesVerdict | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before any model loads: the report and JUnit folders must be writable and the baseline readable."""
        report_dir = self.config.getoption("report_dir")
        _check_writable(Path(report_dir), f"--report-dir {report_dir}")
        junit = self.config.getoption("xmlpath", None)
        if junit:  # pytest writes it after our report: a failure then would contradict the report's exit code
            _check_writable(Path(junit).parent, f"--junitxml {junit}")
        path = self.config.getoption("baseline")
        if path:
            try:
                self.baseline = load_run(Path(path))
                check_pairing(
                    self.baseline, [spec.label for spec in self.state.specs], self.config.getoption("baseline_model")
                )
            except BaselineError as exc:
                raise pytest.UsageError(f"--baseline: {exc}") from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # JUnit XML gets the item's metrics, not the whole payload
            report.user_properties = [entry for entry in report.user_properties if entry[0] != PROPERTY]
            if report.failed:  # e.g. a model that failed to unload: the run must not pass
                self.hard_failures += 1
                self.other_failures.append(f"{report.nodeid} (teardown)")
            return
        payload = _payload(report)
        if payload is not None and (report.when == "call" or report.failed):
            self.records.append(payload)
            item = payload["item"]
            self.nodeids[(item["suite"], item["model"], item["id"])] = report.nodeid
        if report.failed and payload and payload["item"]["status"] == "missed":
            self.misses.append((report.nodeid, report.longreprtext))
        elif report.failed:
            self.hard_failures += 1
            if payload is None:  # a user's own test file, not a suite item
                self.other_failures.append(f"{report.nodeid} ({report.when})")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.hard_failures += 1
            if is_suite_file(Path(str(report.fspath))):
                self.collection_errors.append({"path": report.nodeid, "error": report.longreprtext.strip()})
            else:
                self.other_failures.append(f"{report.nodeid or report.fspath} (collection)")

    @pytest.hookimpl(tryfirst=True)  # before JUnit XML writes its file: the gates go into it
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.USAGE_ERROR or not (self.records or self.collection_errors):
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldfail or session.shouldstop)
        self.interrupted = interrupted
        require_gates = self.config.getoption("require_gates")
        items = [record["item"] for record in self.records]
        specs = self._specs()
        iterations = self.config.getoption("bootstrap_iterations")
        if self.baseline is not None:
            metrics = {name: spec.reported_metrics for name, spec in specs.items()}
            self.comparison = compare(
                items,
                self.baseline,
                metrics,
                baseline_model=self.config.getoption("baseline_model"),
                nodeids=self.nodeids,
                iterations=iterations,
            )
        scope = RunScope(self._planned(), self.state.data_options.limit, interrupted)
        self.summaries = summarize(items, specs, iterations=iterations, comparison=self.comparison, scope=scope)
        gates_to_junit(self.config, self.summaries, self._suite_paths(), require_gates)
        manifest = build_manifest(
            (record["context"] for record in self.records),
            self.state.options_for_manifest(),
            [spec.label for spec in self.state.specs],
        )
        self.cache_faults = manifest["cache_faults"]
        self.cache_recomputed = manifest["cache_entries_recomputed"]
        status = self._exit_status(session.exitstatus, interrupted)
        run = {
            "id": "",
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "complete": not interrupted,
            "require_gates": require_gates,
            "strict_items": self.config.getoption("strict_items"),
            "exit_status": int(status),
            "collection_errors": self.collection_errors,
            "other_failures": self.other_failures,
            "cache_faults": self.cache_faults,
        }
        try:
            self.run_folder = new_run_folder(Path(self.config.getoption("report_dir")))
            run["id"] = self.run_folder.name
            write_run(self.run_folder, self.summaries, items, manifest, run, self.comparison, self._rerun_options())
        except OSError as exc:
            status = pytest.ExitCode.INTERNAL_ERROR
            self.report_error = f"could not write the report: {exc}"
            run.update(exit_status=int(status), report_error=self.report_error)
            self.verdict = run_gates_verdict(self.summaries, run)
            if self.run_folder is not None:
                try:  # the one file that says what happened, if the disk takes that much
                    write_failure_summary(self.run_folder, self.summaries, manifest, run, self.comparison)
                except OSError:
                    pass
        session.exitstatus = status

    def _suite_paths(self) -> dict[str, str]:
        return {record["context"]["suite"]: record["context"]["suite_path"] for record in self.records}

    def _specs(self) -> dict[str, SuiteSpec]:
        """Suite specs by name, as collected: each process sends a suite's spec with the first item it
        reports of it (xdist workers collect, the controller does not; the files may have changed since)."""
        specs: dict[str, SuiteSpec] = {}
        for record in self.records:
            context = record["context"]
            if "suite_spec" in context and context["suite"] not in specs:
                specs[context["suite"]] = SuiteSpec.model_validate(context["suite_spec"])
        return specs

    def _planned(self) -> dict[str, int]:
        """Each suite's size as collected: the items its sampling selects, before --limit."""
        return {record["context"]["suite"]: record["context"]["suite_items"] for record in self.records}

    def _verdict(self, exit_status: int) -> GatesVerdict:
        """The verdict summary.json records, from the same run facts."""
        run = {
            "exit_status": exit_status,
            "strict_items": self.config.getoption("strict_items"),
            "complete": not self.interrupted,
            "collection_errors": self.collection_errors,
            "other_failures": self.other_failures,
            "cache_faults": self.cache_faults,
            "require_gates": self.config.getoption("require_gates"),
        }
        return run_gates_verdict(self.summaries, run)

    def _rerun_options(self) -> list[str]:
        """This invocation's arguments without its paths: what follows the node ids in flipped.txt."""
        paths = set(self.config.args)
        return [arg for arg in self.config.invocation_params.args if arg not in paths]

    def _exit_status(self, status: int, interrupted: bool) -> int:
        """Misses alone do not fail the run (unless --strict-items); errors and failed gates do, and so
        do gates left undecided under --require-gates."""
        misses_only = status == pytest.ExitCode.TESTS_FAILED and self.hard_failures == 0 and not interrupted
        if misses_only and not self.config.getoption("strict_items"):
            status = pytest.ExitCode.OK
        self.verdict = self._verdict(int(status))
        if status == pytest.ExitCode.OK and not self.verdict.passed:
            status = pytest.ExitCode.TESTS_FAILED
        return status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summaries and not self.collection_errors:
            return
        self._show_misses(terminalreporter)
        if self.comparison is not None:
            show_comparison(terminalreporter, self.comparison, self.config.getoption("show_flips"), self.run_folder)
        self._show_gates(terminalreporter)

    def _show_misses(self, terminalreporter: Any) -> None:
        """Details of the first --show-misses misses, then `-rm` one-liners for all of them."""
        shown = self.config.getoption("show_misses")
        if self.misses and shown and self.config.getoption("tbstyle") != "no":
            terminalreporter.section("misses")
            for nodeid, detail in self.misses[:shown]:
                terminalreporter.write_sep("_", nodeid)
                terminalreporter.write_line(detail)
            if len(self.misses) > shown:
                terminalreporter.write_line(
                    f"... {len(self.misses) - shown} more misses: see items.jsonl in the report, "
                    "or re-run items with -k ID, --lf, or more details with --show-misses N"
                )
        if "m" in self.config.option.reportchars and self.misses:
            terminalreporter.section("short summary of missed items")
            for nodeid, detail in self.misses:
                terminalreporter.write_line(f"MISSED {nodeid} - {detail.splitlines()[0]}")

    def _show_gates(self, terminalreporter: Any) -> None:
        show_coverage(terminalreporter, self.summaries)
        terminalreporter.section("vnllmtest gates")
        rows = [("suite", "model", "items", "pass/miss/err", "gate", "value", "result")]
        require_gates = self.config.getoption("require_gates")
        for summary in self.summaries:
            counts = "/".join(str(summary.statuses.get(s, 0)) for s in ("passed", "missed", "error"))
            items = str(summary.items)
            if summary.planned is not None and summary.items < summary.planned:
                items += f" of {summary.planned}"
            for gate in summary.gates or [None]:
                if gate is None:
                    rows.append((summary.suite, summary.model, items, counts, "(no gates)", "", ""))
                    continue
                word, why = gate_outcome(gate.state, gate.reason, require_gates)
                verdict = word.upper() + (f" ({why})" if why else "")
                rows.append((summary.suite, summary.model, items, counts, gate.gate, gate.detail, verdict))
        for failed in self.collection_errors:
            rows.append((failed["path"], "—", "0", "—", "(suite not collected)", "", "FAIL (see collection error)"))
        write_table(terminalreporter, rows)
        notes = {(r["context"]["suite"], note) for r in self.records for note in r["context"].get("data_notes", [])}
        for suite, note in sorted(notes):
            terminalreporter.write_line(f"vnllmtest data note: {suite}: {note}", yellow=True)
        if self.verdict is not None:
            settled = self.verdict.passed and self.verdict.evaluated
            terminalreporter.write_line(
                f"vnllmtest gates: {self.verdict.headline}",
                green=settled,
                yellow=self.verdict.passed and not settled,
                red=not self.verdict.passed,
            )
        for fault in self.cache_faults:
            terminalreporter.write_line(f"vnllmtest: {fault}", red=True)
        if self.cache_recomputed:
            terminalreporter.write_line(
                f"vnllmtest: {self.cache_recomputed} malformed prediction cache entries were computed again",
                yellow=True,
            )
        if self.report_error:
            terminalreporter.write_line(f"vnllmtest: {self.report_error}", red=True)
        elif self.run_folder is not None:
            terminalreporter.write_line(
                f"vnllmtest report: {self.run_folder}/summary.md (also report.html, summary.json, items.jsonl)"
            )


class XdistScheduling:
    """With pytest-xdist's default `--dist load`, send each (suite, model) group to one worker, so the
    group is computed once, in batches, and each worker loads each model at most once. With
    `--shard-size N`, a group of a suite without a judge is split into slices of N items instead."""

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling

        shard_size = config.getoption("shard_size")
        judged = JudgedSuites(config.rootpath)

        class SuiteGroupScheduling(LoadScopeScheduling):
            def __init__(self, *args: Any):
                super().__init__(*args)
                self.scopes: dict[str, str] = {}  # node id -> its work unit
                self.seen: dict[str, int] = {}  # group -> items of it seen so far

            def _split_scope(self, nodeid: str) -> str:
                if nodeid not in self.scopes:
                    self.scopes[nodeid] = self._scope_of(nodeid)
                return self.scopes[nodeid]

            def _scope_of(self, nodeid: str) -> str:
                head, bracket, params = nodeid.partition("[")
                if not (bracket and (".yaml::" in head or ".yml::" in head)):
                    return nodeid
                group = f"{head}[{params.split(':', 1)[0]}"
                if not shard_size or judged(head.split("::", 1)[0]):
                    return group
                position = self.seen[group] = self.seen.get(group, -1) + 1  # items arrive in collection order
                return f"{group}#{position // shard_size}"

        return SuiteGroupScheduling(config, log)


class JudgedSuites:
    """Whether the suite file of a node id has a judge (judged groups are never sharded: the judge
    phase needs the whole group); each file is read once."""

    def __init__(self, root: Path):
        self.root = root
        self.known: dict[str, bool] = {}

    def __call__(self, relative: str) -> bool:
        if relative not in self.known:
            try:
                self.known[relative] = load_suite(self.root / relative).spec.judge is not None
            except SuiteError:
                self.known[relative] = False  # its collection error is reported by the workers
        return self.known[relative]


def pin_worker_device(worker_id: str) -> str | None:
    """Give xdist worker gwN the N-th GPU (round robin) through CUDA_VISIBLE_DEVICES, before CUDA starts:
    the GPUs already listed there, else those the NVIDIA driver shows. None on machines without GPUs."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        devices = [device.strip() for device in listed.split(",") if device.strip()]
    else:
        driver = Path("/proc/driver/nvidia/gpus")
        devices = [str(index) for index in range(len(list(driver.iterdir())))] if driver.is_dir() else []
    if not devices:
        return None
    chosen = devices[int(worker_id.removeprefix("gw") or 0) % len(devices)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen
