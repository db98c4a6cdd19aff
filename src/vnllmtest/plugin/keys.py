"""Names the plugin's modules share, below all of them: where the session's state is kept, and the
user property that carries an item's result from the process that ran it to the one that reports."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vnllmtest.plugin.session import RunState

PROPERTY = "vnllmtest"
STATE = pytest.StashKey["RunState"]()
NO_SUBMISSION = "--submission: no submission: block"  # the reason a suite file is skipped under --submission


def attach_payload(report_or_item: pytest.TestReport | pytest.Item, payload: dict[str, Any]) -> None:
    """Send an item's record and run context with its report (as JSON: xdist carries it between processes)."""
    report_or_item.user_properties.append((PROPERTY, json.dumps(payload, ensure_ascii=False)))


def read_payload(report: pytest.TestReport) -> dict[str, Any] | None:
    """The record and context an item's report carries; None for reports of other tests."""
    for name, value in report.user_properties:
        if name == PROPERTY:
            return json.loads(value)
    return None
