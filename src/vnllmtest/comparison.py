"""A run against a baseline run, paired on the items both evaluated: differences with CIs and
p-values per metric, the items that flipped between pass and miss, and the items only one run has."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vnllmtest.aggregate import cluster_labels, scale_of
from vnllmtest.metrics import Estimate, estimate, mcnemar_exact, paired_permutation_p


class BaselineError(Exception):
    """A baseline that cannot be read or paired; the message names the file, line and what to do."""


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from its report folder."""

    path: Path
    run_id: str
    items: list[dict[str, Any]]
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class MetricDifference:
    """current - baseline on the items both runs scored, in points (judge metrics: rubric units)."""

    suite: str
    model: str
    baseline_model: str
    metric: str
    shared: int
    current: Estimate
    baseline: Estimate
    difference: Estimate
    p_value: float
    test: str  # "mcnemar" (0/1 metrics, independent items) or "permutation" (sign flips, by cluster)


@dataclass(frozen=True)
class Coverage:
    """Which items of one (suite, model) the baseline also has."""

    suite: str
    model: str
    baseline_model: str | None  # None: the baseline has no results for this suite
    shared: int
    only_current: list[str]
    only_baseline: list[str]


@dataclass(frozen=True)
class Flip:
    """An item that passed in one run and not in the other."""

    suite: str
    model: str
    baseline_model: str
    id: str
    direction: str  # "regression" (passed in the baseline) or "fix"
    baseline_status: str
    status: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    nodeid: str | None = None


@dataclass
class Comparison:
    baseline: StoredRun
    differences: list[MetricDifference] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)

    def difference(self, suite: str, model: str, metric: str) -> MetricDifference | None:
        return next((d for d in self.differences if (d.suite, d.model, d.metric) == (suite, model, metric)), None)

    @property
    def regressions(self) -> list[Flip]:
        return [flip for flip in self.flips if flip.direction == "regression"]

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": {"path": str(self.baseline.path), "run_id": self.baseline.run_id},
            "metrics": [asdict(d) for d in self.differences],
            "coverage": [asdict(c) for c in self.coverage],
            "flips": [asdict(f) for f in self.flips],
        }


def load_run(path: Path) -> StoredRun:
    """A run from its report folder, its summary.json or its items.jsonl (items.jsonl is required:
    comparisons are paired item by item)."""
    path = Path(path)
    if path.is_dir():
        folder, items_file = path, path / "items.jsonl"
    elif path.name == "summary.json":
        folder, items_file = path.parent, path.parent / "items.jsonl"
    else:
        folder, items_file = path.parent, path
    if not path.exists():
        raise BaselineError(f"{path}: no such run folder or file")
    if not items_file.is_file():
        raise BaselineError(f"{items_file}: not found; a baseline needs the run's items.jsonl beside summary.json")
    summary_file = folder / "summary.json"
    summary = _read_json(summary_file) if summary_file.is_file() else None
    run_id = (summary or {}).get("run", {}).get("id") or folder.name
    return StoredRun(path=path, run_id=run_id, items=_read_items(items_file), summary=summary)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a readable JSON file ({exc})") from None


def _read_items(path: Path) -> list[dict[str, Any]]:
    items = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BaselineError(f"{path}:{number}: not a JSON record ({exc.msg})") from None
                missing = [key for key in ("suite", "model", "id", "status") if key not in record]
                if missing:
                    raise BaselineError(f"{path}:{number}: record lacks {', '.join(missing)}")
                broken = [name for name, value in (record.get("metrics") or {}).items() if not _is_finite(value)]
                if broken:
                    value = record["metrics"][broken[0]]
                    raise BaselineError(f"{path}:{number}: metric '{broken[0]}' is {value!r}, not a finite number")
                items.append(record)
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot be read ({exc})") from None
    return items


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_pairing(baseline: StoredRun, labels: Sequence[str], baseline_model: str | None) -> None:
    """Raise BaselineError now, before any model loads, if a model could not be paired with the baseline."""
    if not baseline.items:
        raise BaselineError(f"{baseline.path}: the run holds no items")
    available: dict[str, set[str]] = defaultdict(set)
    for record in baseline.items:
        available[record["suite"]].add(record["model"])
    for suite, models in available.items():
        for label in labels:
            _baseline_model(suite, label, sorted(models), baseline_model)


def compare(
    current: Iterable[Mapping[str, Any]],
    baseline: StoredRun,
    metrics_by_suite: Mapping[str, Sequence[str]],
    *,
    baseline_model: str | None = None,
    nodeids: Mapping[tuple[str, str, str], str] | None = None,
    seed: int = 0,
    iterations: int = 1000,
) -> Comparison:
    """Pair every (suite, model) group of `current` with the baseline's results for that suite (the
    same model label, else `baseline_model`, else the baseline's only model)."""
    groups = _by_group(current)
    stored = _by_group(baseline.items)
    comparison = Comparison(baseline)
    for (suite, model), records in sorted(groups.items()):
        matched = _baseline_model(suite, model, sorted(m for s, m in stored if s == suite), baseline_model)
        if matched is None:
            comparison.coverage.append(Coverage(suite, model, None, 0, sorted(records), []))
            continue
        theirs = stored[(suite, matched)]
        shared = sorted(set(records) & set(theirs))
        comparison.coverage.append(
            Coverage(
                suite,
                model,
                matched,
                len(shared),
                sorted(set(records) - set(theirs)),
                sorted(set(theirs) - set(records)),
            )
        )
        pairs = [(records[key], theirs[key]) for key in shared]
        for metric in metrics_by_suite.get(suite, ()):
            found = _difference(suite, model, matched, metric, pairs, seed, iterations)
            if found is not None:
                comparison.differences.append(found)
        comparison.flips += _flips(suite, model, matched, pairs, nodeids or {})
    comparison.flips.sort(key=lambda f: (f.direction != "regression", f.suite, f.model, f.id))
    return comparison


def _by_group(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Mapping[str, Any]]]:
    groups: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for record in records:
        groups[(record["suite"], record["model"])][record["id"]] = record
    return groups


def _baseline_model(suite: str, model: str, available: list[str], chosen: str | None) -> str | None:
    if not available:
        return None
    if chosen is not None:
        if chosen not in available:
            raise BaselineError(
                f"--baseline-model {chosen}: the baseline's {suite} results are for {', '.join(available)}"
            )
        return chosen
    if model in available:
        return model
    if len(available) == 1:
        return available[0]
    raise BaselineError(
        f"the baseline has {suite} results for several models ({', '.join(available)}) and none is "
        f"'{model}': choose one with --baseline-model"
    )


def _difference(
    suite: str,
    model: str,
    baseline_model: str,
    metric: str,
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]],
    seed: int,
    iterations: int,
) -> MetricDifference | None:
    scored = [(ours, theirs) for ours, theirs in pairs if metric in ours["metrics"] and metric in theirs["metrics"]]
    if not scored and not any(metric in theirs["metrics"] for _, theirs in pairs):
        return None  # neither run reports this metric here (e.g. a judge the baseline did not run)
    now = [ours["metrics"][metric] for ours, _ in scored]
    before = [theirs["metrics"][metric] for _, theirs in scored]
    differences = [a - b for a, b in zip(now, before)]
    clusters = cluster_labels([ours for ours, _ in scored])
    options = {"seed": seed, "iterations": iterations}
    scale = scale_of(metric)
    binary = all(value in (0.0, 1.0) for value in now + before)
    if not scored:
        p_value, test = float("nan"), "none"
    elif binary and clusters is None:
        p_value, test = _mcnemar(now, before), "mcnemar"
    else:
        p_value, test = paired_permutation_p(differences, clusters=clusters, **options), "permutation"
    return MetricDifference(
        suite,
        model,
        baseline_model,
        metric,
        len(scored),
        estimate(now, scale=scale, clusters=clusters, **options),
        estimate(before, scale=scale, clusters=clusters, **options),
        estimate(differences, scale=scale, clusters=clusters, **options),
        p_value,
        test,
    )


def _mcnemar(now: list[float], before: list[float]) -> float:
    only_now = sum(1 for a, b in zip(now, before) if a > b)
    only_before = sum(1 for a, b in zip(now, before) if a < b)
    return mcnemar_exact(only_before, only_now)


def _flips(
    suite: str,
    model: str,
    baseline_model: str,
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]],
    nodeids: Mapping[tuple[str, str, str], str],
) -> list[Flip]:
    flips = []
    for ours, theirs in pairs:
        was, now = theirs["status"] == "passed", ours["status"] == "passed"
        if was != now:
            flips.append(
                Flip(
                    suite,
                    model,
                    baseline_model,
                    ours["id"],
                    "regression" if was else "fix",
                    theirs["status"],
                    ours["status"],
                    dict(ours["metrics"]),
                    dict(theirs["metrics"]),
                    nodeids.get((suite, model, ours["id"])),
                )
            )
    return flips
