"""JUnit XML (`--junitxml`) that reads like the run's verdict: the gates as test cases next to the items
pytest writes there, and the items' outcomes recast once pytest has written the file, so that a run whose
gates pass shows no failures there (a miss is a skipped test case, unless --strict-items)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.junitxml import xml_key
from _pytest.reports import TestReport

if TYPE_CHECKING:
    from vnllmtest.outcomes import GateResult, GroupSummary

STATUS_PROPERTY = "status"  # each item's test case carries its status (as in items.jsonl) as this property
COUNTS = {"failure": "failures", "error": "errors", "skipped": "skipped"}  # element -> test suite attribute


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
    from vnllmtest.gates import gate_outcome

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


class ItemOutcomesInJUnit:
    """Recasts the `<failure>` of each item that pytest reported failed, once pytest's junitxml plugin has
    written its file: a missed item's becomes `<skipped type="vnllmtest.missed">` (its message and text
    unchanged; under --strict-items it stays a failure), an errored item's `<error type="vnllmtest.error">`,
    and each test suite's counts follow. pytest itself still sees these items failed: the terminal shows
    them MISSED or failed, and --lf re-selects them."""

    def __init__(self, strict_items: bool):
        self.recast = {"error": "error"} if strict_items else {"missed": "skipped", "error": "error"}

    @pytest.hookimpl(trylast=True)  # after pytest's junitxml plugin (no order of its own) has written the file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        xml = session.config.stash.get(xml_key, None)
        if xml is not None:
            recast_items(Path(xml.logfile), self.recast)


def recast_items(path: Path, recast: Mapping[str, str]) -> None:
    """Rename the `<failure>` of each test case whose status property is a key of `recast` to the element
    it names (typed `vnllmtest.<status>`) and move it between its test suite's counts. The file is
    rewritten only when something changed."""
    tree = ET.parse(path)
    changed = False
    for suite in tree.getroot().iter("testsuite"):
        moved: Counter[str] = Counter()
        for case in suite.iter("testcase"):
            status = next(
                (p.get("value") for p in case.iterfind("properties/property") if p.get("name") == STATUS_PROPERTY), None
            )
            failure = case.find("failure")
            if failure is not None and status in recast:
                failure.tag = recast[status]
                failure.set("type", f"vnllmtest.{status}")
                moved["failure"] -= 1
                moved[failure.tag] += 1
        for tag, change in moved.items():
            suite.set(COUNTS[tag], str(int(suite.get(COUNTS[tag], "0")) + change))
        changed = changed or bool(moved)
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
