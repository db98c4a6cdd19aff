"""Finished runs read back from their report folders (for `--baseline` and `vnllmtest compare`), checked
record by record, so that a malformed file is a clear error before any model loads, never a crash after."""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from vnllmtest.clipping import described, shown
from vnllmtest.outcomes import STATUSES, GateResult, GateState, GroupSummary, ItemResult, RunFacts

SHOWN_CHARS = 80  # the most of a stored value an error message repeats


class BaselineError(Exception):
    """A baseline that cannot be read or paired; the message names the file, line and what to do."""


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from its report folder."""

    path: Path
    run_id: str
    items: list[ItemResult]
    summary: dict[str, Any] | None

    def definition_version(self, metric: str) -> int | None:
        """The version of `metric`'s definition the run used, from its summary.json; a run from before
        versions were stored (or without summary.json) used version 1; None: not recorded."""
        return _stored_version(self.summary, metric)

    @property
    def definitions_note(self) -> str | None:
        """Why the run's definition versions are assumed rather than read, if they are."""
        if self.summary is None:
            return f"{self.run_id}: no summary.json beside its items; definitions unknown, every metric taken as v1"
        if "metric_definitions" not in self.summary:
            return f"{self.run_id}: made before metric definitions were versioned; every metric taken as v1"
        return None

    @property
    def summary_file(self) -> Path:
        """Where the run's summary.json is (or would be): beside its items.jsonl."""
        return (self.path if self.path.is_dir() else self.path.parent) / "summary.json"

    def recorded_gates(self) -> tuple[list[GroupSummary], RunFacts]:
        """The run's groups as its summary.json records them (suite, model, items, statuses and each gate's
        result with its declared spec; no metrics), and the run's facts. Raises BaselineError naming the
        field for a run without summary.json, one from before gates were stored with their spec, or a
        malformed record."""
        where = str(self.summary_file)
        if self.summary is None:
            raise BaselineError(f"{where}: not found; a run's gates are recorded there")
        results = _field(self.summary, "results", list, where)
        groups = [_recorded_group(result, f"{where}: results[{n}]") for n, result in enumerate(results)]
        return groups, _recorded_facts(_field(self.summary, "run", dict, where), f"{where}: run")


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
        runs = sorted(found.parent.name for found in path.glob("*/items.jsonl")) if path.is_dir() else []
        hint = f" {path} holds runs, not a run: name one of them (the newest: {path / runs[-1]})" if runs else ""
        raise BaselineError(f"{items_file}: not found; a stored run needs its items.jsonl beside summary.json.{hint}")
    summary_file = folder / "summary.json"
    summary = _read_summary(summary_file) if summary_file.is_file() else None
    manifest = (summary or {}).get("manifest")
    if isinstance(manifest, dict) and manifest.get("submissions"):
        raise BaselineError(
            f"{summary_file}: a --submission run (its answers are hidden): nothing was scored to compare"
        )
    run_id = (summary or {}).get("run", {}).get("id") or folder.name
    items = _read_items(items_file, _binary_under(summary))
    return StoredRun(path=path, run_id=str(run_id), items=items, summary=summary)


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BaselineError(f"{path}: not a readable JSON file ({shown(exc, SHOWN_CHARS)})") from None
    if not isinstance(summary, dict):
        raise BaselineError(f"{path}: expected a JSON object, got {_kind(summary)}")
    for key in ("run", "metric_definitions"):
        if key in summary and not isinstance(summary[key], dict):
            raise BaselineError(f"{path}: field '{key}': expected an object, got {_kind(summary[key])}")
    return summary


def _read_items(path: Path, binary: Callable[[str], bool]) -> list[ItemResult]:
    items: list[ItemResult] = []
    first_line: dict[tuple[str, str, str], int] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record = _checked_record(line, f"{path}:{number}", binary)
                key = (record["suite"], record["model"], record["id"])
                if key in first_line:
                    suite, model, item = (shown(part, SHOWN_CHARS) for part in key)
                    raise BaselineError(
                        f"{path}:{number}: item '{item}' of suite '{suite}' for model '{model}' "
                        f"is already on line {first_line[key]}"
                    )
                first_line[key] = number
                items.append(ItemResult.from_record(record))
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot be read ({shown(exc, SHOWN_CHARS)})") from None
    return items


def _checked_record(line: str, where: str, binary: Callable[[str], bool]) -> dict[str, Any]:
    """One items.jsonl line as a record with the fields a comparison reads, each of the right type."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        problem = shown(getattr(exc, "msg", exc), SHOWN_CHARS)
        raise BaselineError(f"{where}: not a JSON record ({problem})") from None
    if not isinstance(record, dict):
        raise BaselineError(f"{where}: expected a JSON object, got {_kind(record)}")
    missing = [key for key in ("suite", "model", "id", "status", "metrics") if key not in record]
    if missing:
        raise BaselineError(f"{where}: record lacks {', '.join(missing)}")
    for key in ("suite", "model", "id"):
        if not isinstance(record[key], str) or not record[key]:
            raise BaselineError(f"{where}: field '{key}': expected a non-empty string, got {_kind(record[key])}")
    if record["status"] not in STATUSES:
        raise BaselineError(
            f"{where}: field 'status': expected one of {', '.join(STATUSES)}, "
            f"got {described(record['status'], SHOWN_CHARS)}"
        )
    metrics = record["metrics"]
    if not isinstance(metrics, dict):
        raise BaselineError(f"{where}: field 'metrics': expected an object, got {_kind(metrics)}")
    for name, value in metrics.items():
        if not _is_finite(value):
            raise BaselineError(
                f"{where}: metric '{shown(name, SHOWN_CHARS)}' is {described(value, SHOWN_CHARS)}, not a finite number"
            )
        if value not in (0, 1) and binary(name):
            raise BaselineError(f"{where}: metric '{name}' is declared binary (0 or 1) but has the value {value:g}")
    tags = record.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise BaselineError(
            f"{where}: field 'tags': expected an object of strings, got {described(tags, SHOWN_CHARS)}"
        )
    if record.get("cluster") is not None and not isinstance(record["cluster"], str):
        raise BaselineError(f"{where}: field 'cluster': expected a string or null, got {_kind(record['cluster'])}")
    return record


def _recorded_group(result: Any, where: str) -> GroupSummary:
    result = _checked(result, dict, where)
    group = GroupSummary(_field(result, "suite", str, where), _field(result, "model", str, where))
    group.items = _field(result, "items", int, where)
    group.planned = _field(result, "suite_items", int | None, where)
    statuses = _field(result, "statuses", dict, where)
    group.statuses = Counter({s: _field(statuses, s, int, f"{where}.statuses") for s in statuses if s in STATUSES})
    gates = _field(result, "gates", list, where)
    group.gates = [_recorded_gate(group, gate, f"{where}.gates[{n}]") for n, gate in enumerate(gates)]
    return group


def _recorded_gate(group: GroupSummary, gate: Any, where: str) -> GateResult:
    gate = _checked(gate, dict, where)
    if "spec" not in gate:
        raise BaselineError(
            f"{where}: no 'spec': the run was made before vnllmtest stored each gate's declared spec, so its "
            "gates can only be read as text; run it again to gate it"
        )
    state = _field(gate, "state", str, where)
    if state not in get_args(GateState):
        states = ", ".join(get_args(GateState))
        raise BaselineError(f"{where}: field 'state': expected one of {states}, got {described(state, SHOWN_CHARS)}")
    value = _field(gate, "value", float | int | None, where)
    return GateResult(
        group.suite,
        group.model,
        _field(gate, "metric", str, where),
        _field(gate, "gate", str, where),
        math.nan if value is None else float(value),
        state,
        _field(gate, "reason", str, where),
        _field(gate, "detail", str, where),
        _field(gate, "spec", dict, where),
        _field(gate, "rule", str, where),
    )


def _recorded_facts(run: Mapping[str, Any], where: str) -> RunFacts:
    """The facts that decide a run's verdict besides its gates (what summary.json's `run` records)."""
    facts = RunFacts(report_error=_field(run, "report_error", str | None, where) if "report_error" in run else None)
    for key, kind in (("complete", bool), ("require_gates", bool), ("strict_items", bool), ("exit_status", int)):
        setattr(facts, key, _field(run, key, kind, where))
    for key in ("collection_errors", "other_failures", "cache_faults"):
        setattr(facts, key, _field(run, key, list, where))
    return facts


def _field(record: Mapping[str, Any], key: str, kind: Any, where: str) -> Any:
    """`record[key]` checked to be of `kind` (a type or a union; a boolean is no number), or BaselineError."""
    if key not in record:
        raise BaselineError(f"{where}: field '{key}' is missing")
    return _checked(record[key], kind, f"{where}: field '{key}'")


def _checked(value: Any, kind: Any, where: str) -> Any:
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise BaselineError(f"{where}: expected {_KIND_NAMES.get(kind, kind)}, got {_kind(value)}")
    return value


_KIND_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a whole number",
    int | None: "a whole number or null",
    float | int | None: "a number or null",
    str | None: "a string or null",
}


def _stored_version(summary: Mapping[str, Any] | None, metric: str) -> int | None:
    if summary is None or "metric_definitions" not in summary:
        return 1
    version = (summary.get("metric_definitions") or {}).get(metric)
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _binary_under(summary: Mapping[str, Any] | None) -> Callable[[str], bool]:
    """Whether a metric of this run is binary (its paired test, McNemar, counts items that changed between 0
    and 1): declared so today, under the definition the run used (another version is not compared anyway)."""
    from vnllmtest.metric_table import is_known_metric, metric_info  # the metrics stack, only when a run is read

    @functools.cache  # once per metric name, not once per item
    def binary(metric: str) -> bool:
        if not is_known_metric(metric):
            return False
        found = metric_info(metric)
        return found.kind == "binary" and _stored_version(summary, metric) == found.version

    return binary


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words, with the value itself when it is short."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    kind = names.get(type(value), "a number")
    return f"{kind} ({described(value, SHOWN_CHARS)})" if isinstance(value, int | float | str) else kind
