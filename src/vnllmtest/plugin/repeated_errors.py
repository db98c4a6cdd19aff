"""A model that cannot be set up (a candidate, or a judge) fails every item that needs it, all with the same
error: the first item of each (suite, model) group to fail with it shows the error, with its fix; the group's
other items one line that names that item. The record is per process: under xdist, per worker's share of a group."""

from __future__ import annotations

from pathlib import Path

import pytest

_SHOWN = pytest.StashKey[dict[tuple[str, Path, str], str]]()  # (model, suite, error) -> the item showing it


def show_once(config: pytest.Config, model: str, suite: Path, report: pytest.TestReport, error: str) -> None:
    """Give a failed report the whole `error` if it is the first of its group to fail with it, else one line."""
    shown = config.stash.setdefault(_SHOWN, {})
    first = shown.setdefault((model, suite, error), report.nodeid)
    if first == report.nodeid:
        report.longrepr = error
        return
    if report.when == "setup":
        report.longrepr = f"model '{model}' could not be set up: the same error as at setup of {first} (shown there)"
    else:
        report.longrepr = f"{error.split(':', 1)[0]}: the same error as {first} (shown there)"
