"""Where a run's time goes: seconds per phase in this process. Phases nest, and each second counts once, in
the innermost phase open, except that everything inside the judge phase but model loads counts as judging
(the judges generate and score too)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# load: models (downloads, conversions, weights); generate: the candidates' generation; score: the rest of
# computing a (suite, model) group (prompts, option log-likelihoods, metrics, the cache); judge: the
# model-graded scorers; report: comparison, summaries and the report files.
PHASES = ("load", "generate", "score", "judge", "report")

_totals = dict.fromkeys(PHASES, 0.0)
_open: list[list] = []  # [phase, seconds spent in the phases closed inside it, when it opened]


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Count the time spent inside as `name` (less what nested phases count)."""
    if name not in PHASES:
        raise ValueError(f"unknown phase {name!r}; phases: {', '.join(PHASES)}")
    if name != "load" and any(entry[0] == "judge" for entry in _open):
        name = "judge"
    started = time.perf_counter()
    entry = [name, 0.0, started]
    _open.append(entry)
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        _open.pop()
        _totals[name] += elapsed - entry[1]
        if _open:
            _open[-1][1] += elapsed


def counted(name: str, seconds: float) -> None:
    """Count `seconds` just spent inside the open phase (a model load measured there) as `name` instead."""
    _totals[name] += seconds
    if _open:
        _open[-1][1] += seconds


def snapshot() -> dict[str, float]:
    return dict(_totals)


def since(start: Mapping[str, float]) -> dict[str, float]:
    """Seconds per phase since `snapshot()` gave `start` (a process may run several pytest sessions), the
    phases still open included."""
    now = time.perf_counter()
    current = dict(_totals)
    for entry, inner in zip(_open, [*_open[1:], None]):
        current[entry[0]] += (now - entry[2]) - entry[1] - (now - inner[2] if inner else 0.0)
    return {name: round(current[name] - start.get(name, 0.0), 3) for name in PHASES}
