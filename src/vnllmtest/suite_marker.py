"""Telling vnllmtest suite files from other YAML cheaply, for every file pytest walks past."""

from __future__ import annotations

import re
from pathlib import Path

SUITE_MARKER = "vnllmtest"
MAX_SUITE_BYTES = 1 << 20  # real suites are a few kilobytes
_MARKER_LINE = re.compile(rf"^(\ufeff)?{SUITE_MARKER}\s*:", re.MULTILINE)


def is_suite_file(path: Path) -> bool:
    """True for YAML files that declare themselves vnllmtest suites (a top-level `vnllmtest:` key within
    the first MAX_SUITE_BYTES, where any suite has it); a BOM before it is allowed."""
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_SUITE_BYTES)
    except OSError:
        return False
    return _MARKER_LINE.search(head.decode("utf-8", errors="replace")) is not None
