"""Collection: a YAML suite file becomes one pytest item per (model, selected record), and the item's
body looks up its batched result and turns it into an outcome (passed, MISSED, ERROR) with details.
The suite schema, prompts and evaluation load when a suite file is collected, not with the plugin."""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.python import FunctionDefinition, Metafunc

from vnllmtest.clipping import clip
from vnllmtest.loaders import BadRecord, DataError, Item, LoadedData, load_data
from vnllmtest.plugin.keys import NO_SUBMISSION, STATE, attach_payload

if TYPE_CHECKING:
    from vnllmtest.backends import Backend
    from vnllmtest.outcomes import ItemResult
    from vnllmtest.suite import Suite


class ItemMissed(Exception):
    """The model's answer to this item is wrong (a miss, not a run failure unless --strict-items)."""


class ItemErrored(Exception):
    """This item could not be evaluated (bad record, bad prompt, model failure)."""


class SuiteFile(pytest.Module):
    """A YAML suite file: one test item per (model, selected record)."""

    def _getobj(self) -> types.ModuleType:
        module = types.ModuleType(f"vnllmtest_suite_{self.path.stem}")
        module.__file__ = str(self.path)
        return module

    def collect(self) -> Iterator[pytest.Item]:
        from vnllmtest.suite import SuiteError, load_suite

        state = self.config.stash[STATE]
        try:
            suite = load_suite(self.path)
            if state.settings.submission:
                suite = _submission_view(suite)
            data = load_data(suite, state.settings.data)
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
        shard_size = None if suite.spec.model_graded else state.settings.shard_size
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


def _submission_view(suite: Suite) -> Suite:
    """The suite as --submission runs it; a suite without a submission: block is skipped (the skip names it)."""
    from vnllmtest.suite import SuiteError

    if suite.spec.submission is None:
        pytest.skip(f"{NO_SUBMISSION}: {suite.name}", allow_module_level=True)
    try:
        return dataclasses.replace(suite, spec=suite.spec.as_submission())
    except ValueError as exc:
        raise SuiteError(f"{suite.path}: {exc}") from None


def _check_template_fields(suite: Suite, data: LoadedData) -> None:
    from vnllmtest.evaluation import prompt_constants
    from vnllmtest.prompts import limit_error, unknown_fields
    from vnllmtest.suite import SuiteError

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
    attach_payload(case, {"item": result.to_record(), "context": state.context(case, vnllm_model)})
    case.user_properties.append(("status", result.status))  # what JUnit XML shows of it (plugin/junit.py)
    case.user_properties += [(f"metric.{name}", value) for name, value in result.metrics.items()]
    if result.status == "error":
        raise ItemErrored(f"ERROR {result.failure_class}: {clip(result.message or '', 4000)}")
    if result.status == "missed":
        raise ItemMissed(_miss_detail(result))


def record_failure(case: SuiteCase, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """An item record for a case that failed before it had a result (its model could not be set up, or
    something broke on the way), so that the report still counts it as an error."""
    from vnllmtest.evaluation import error_result

    state = case.config.stash[STATE]
    message = call.excinfo.exconly() if call.excinfo else str(report.longrepr)
    failure_class = "model_error" if report.when == "setup" else "internal_error"
    result = error_result(case.suite, case.model_label, case.entry, failure_class, message)
    attach_payload(report, {"item": result.to_record(), "context": state.context(case, None)})
    case.user_properties.append(("status", "error"))  # JUnit XML: an error (plugin/junit.py)


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
