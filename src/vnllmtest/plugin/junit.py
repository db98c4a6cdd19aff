"""The gates as test cases in JUnit XML (`--junitxml`), next to the items pytest writes there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key
from _pytest.reports import TestReport

from vnllmtest.gates import gate_outcome
from vnllmtest.outcomes import GateResult, GroupSummary


def gates_to_junit(
    config: pytest.Config, summaries: Sequence[GroupSummary], suite_paths: Mapping[str, str], require_gates: bool
) -> None:
    """One JUnit test case per gate (`<suite file>::gate[<model>:<gate>]`): passed, failed, or skipped
    with the reason (`not evaluated: ...` for part of a suite), failed too under --require-gates."""
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for summary in summaries:
        location = _relative(Path(suite_paths.get(summary.suite, summary.suite)), config.rootpath)
        for gate in summary.gates:
            for report in _gate_reports(location, summary.model, gate, require_gates):
                xml.pytest_runtest_logreport(report)


def _gate_reports(location: str, model: str, gate: GateResult, require_gates: bool) -> tuple[TestReport, TestReport]:
    name = f"gate[{model}:{gate.gate}]"
    nodeid = f"{location}::{name}"
    word, why = gate_outcome(gate.state, gate.reason, require_gates)
    if word == "pass":
        outcome, longrepr = "passed", None
    elif word == "FAIL":
        outcome, longrepr = "failed", f"gate failed: {gate.gate}: {why}; {gate.detail}"
    else:
        message = why if word == "skipped" else f"{word}: {why}"  # e.g. "not evaluated: 1 of 4 items ran; ..."
        outcome, longrepr = "skipped", (location, 0, f"Skipped: {message}")
    properties = [("gate", gate.gate), ("state", gate.state), ("value", gate.value), ("estimate", gate.detail)]
    properties.append(("reason", gate.reason))
    where = (location, None, name)
    call = TestReport(nodeid, where, {}, outcome, longrepr, "call")
    teardown = TestReport(nodeid, where, {}, "passed", None, "teardown", user_properties=properties)
    return call, teardown


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
