"""The pytest plugin (entry point `vnllmtest.plugin`): its hooks and fixtures, each handing over to
the module that does the work.

Every dataset record of a suite becomes one test item per `--model` (collect.py). The items are
ordinary pytest Functions parametrized by the session-scoped `vnllm_model` fixture, so pytest groups
them by model and finishes (unloads) one model before it loads the next. The first item of a
(model, suite) group computes the whole group in batches (session.py); each item then checks its own
result. Options are read once (settings.py); results, the report and the exit code come together in
results.py, the terminal summary in terminal.py, gates and item outcomes in JUnit XML in junit.py, xdist in
xdist.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vnllmtest.backends import Backend, ModelError, ModelSpec, load_backend
from vnllmtest.cache import CacheError
from vnllmtest.plugin.collect import ItemErrored, SuiteCase, SuiteFile, record_failure
from vnllmtest.plugin.keys import STATE, read_payload
from vnllmtest.plugin.options import add_options
from vnllmtest.plugin.repeated_errors import show_once
from vnllmtest.plugin.results import ResultCollector
from vnllmtest.plugin.session import RunState
from vnllmtest.plugin.settings import read_settings
from vnllmtest.plugin.xdist import XdistScheduling, pin_worker_device
from vnllmtest.suite_marker import is_suite_file

if TYPE_CHECKING:
    from vnllmtest.runner import Runner


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vnllmtest: an item of a vnllmtest YAML suite")
    state = RunState(config, read_settings(config))
    config.stash[STATE] = state
    if not state.is_worker:
        config.pluginmanager.register(ResultCollector(state), "vnllmtest-results")
        from vnllmtest.plugin.junit import ItemOutcomesInJUnit

        config.pluginmanager.register(ItemOutcomesInJUnit(state.settings.strict_items), "vnllmtest-junit")
    else:
        state.worker_devices = pin_worker_device(state.worker_id)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistScheduling(state.settings.shard_size), "vnllmtest-xdist")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vnllm_model" in metafunc.fixturenames:
        specs = metafunc.config.stash[STATE].settings.specs
        metafunc.parametrize("vnllm_model", specs, ids=[s.label for s in specs], indirect=True, scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Items of model-graded suites (a judge, a model-graded metric) run last, after every model's other
    items, so the scoring models load after all candidates are done (each group keeps its model order)."""
    graded = [item for item in items if isinstance(item, SuiteCase) and item.suite.spec.model_graded]
    if graded:
        moved = set(map(id, graded))
        items[:] = [item for item in items if id(item) not in moved] + graded


def pytest_collection_finish(session: pytest.Session) -> None:
    """Index the suite cases; when there are any, the prediction cache must open before any model loads
    (only then: every pytest run where vnllmtest is installed comes through here)."""
    state = session.config.stash[STATE]
    state.index_cases([item for item in session.items if isinstance(item, SuiteCase)])
    if not state.groups or session.config.option.collectonly:
        return
    try:
        state.runner
    except CacheError as exc:
        if not state.is_worker:
            raise pytest.UsageError(str(exc)) from None
        state.cache_error = str(exc)  # an xdist worker: its items error at once, naming the file and the fix


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if isinstance(item, SuiteCase) and report.failed and report.when != "teardown" and read_payload(report) is None:
        record_failure(item, report, call)  # the model could not be set up, or something failed before a result
    failure = call.excinfo
    if isinstance(item, SuiteCase) and report.failed and failure is not None:  # one error of many: repeated_errors.py
        set_up = report.when == "setup" and failure.errisinstance(pytest.fail.Exception)
        if set_up or failure.errisinstance(ItemErrored):
            show_once(item.config, item.model_label, item.suite.path, report, str(failure.value))
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    if report.when == "call" and report.failed:
        payload = read_payload(report)
        if payload and payload["item"]["status"] == "missed":
            return "missed", "m", ("MISSED", {"yellow": True})
    return None


@pytest.fixture(scope="session")
def vnllm_runner(request: pytest.FixtureRequest) -> Runner:
    """The session's batching, caching runner, for custom checks in users' own test files."""
    return request.config.stash[STATE].runner


@pytest.fixture(scope="session")
def vnllm_model(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The model under test, loaded once per process and unloaded before the next one loads."""
    spec: ModelSpec = request.param
    try:
        settings = request.config.stash[STATE].settings
        backend = load_backend(spec, settings.hf, settings.server)
    except ModelError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield backend
    finally:
        backend.close()
