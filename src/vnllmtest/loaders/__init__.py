"""Dataset loading: find a suite's data, read records, adapt them to items, sample deterministically."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from vnllmtest.loaders import sampling, squad, vims, vmlu, vtsnlp
from vnllmtest.loaders.base import (
    BadRecord,
    DataError,
    Item,
    RawRecord,
    RecordError,
    nfc,
)
from vnllmtest.loaders.sources import HF_PREFIX, read_file, read_hf
from vnllmtest.suite import Suite

DATA_DIR_ENV = "VNLLMTEST_DATA_DIR"
ADAPTERS: dict[str, ModuleType] = {"vmlu": vmlu, "squad_v2": squad, "vims": vims, "vtsnlp": vtsnlp}
# Adapters whose ids are derived from content: an exact repeat is the same item, not a conflict.
CONTENT_IDS = {"vtsnlp"}

__all__ = ["BadRecord", "DataError", "DataOptions", "Item", "LoadedData", "load_data"]


@dataclass(frozen=True)
class DataOptions:
    """Where data comes from for this run: the declared source (`full`) or the bundled `sample`."""

    mode: Literal["full", "sample"] = "full"
    data_dir: Path | None = None
    limit: int | None = None

    @classmethod
    def from_environment(cls, mode: str, data_dir: str | None, limit: int | None) -> DataOptions:
        chosen = data_dir or os.environ.get(DATA_DIR_ENV) or None
        return cls(mode=mode, data_dir=Path(chosen).resolve() if chosen else None, limit=limit)


@dataclass(frozen=True)
class LoadedData:
    entries: list[Item | BadRecord]  # the selected records, in source order
    pool: list[Item]  # where few-shot examples come from: every valid item when the suite has few-shot
    origin: str  # what ran, for the report
    total: int  # records read before sampling
    planned: int  # records the suite's sampling selects, before --limit: the whole suite for its gates
    notes: tuple[str, ...] = ()  # what the report should say about the selection (e.g. short strata)


def load_data(suite: Suite, options: DataOptions) -> LoadedData:
    """The items a suite evaluates under `options`; DataError when the data cannot be found."""
    adapter = ADAPTERS[suite.spec.dataset.adapter]
    origin, records = _locate(suite, options, adapter)
    stream = _dedupe(
        _adapt(records, adapter.to_item, suite.spec.dataset.options),
        content_ids=suite.spec.dataset.adapter in CONTENT_IDS,
    )
    plan = suite.spec.dataset.sampling if options.mode == "full" else None
    if plan is not None and sampling.streamable(plan) and suite.spec.prompt.fewshot is None:
        selected, notes, total = sampling.sample_stream(stream, plan)  # keeps only the chosen records
        pool = [entry for entry in selected if isinstance(entry, Item)]
    else:
        entries = list(stream)
        pool, total = [entry for entry in entries if isinstance(entry, Item)], len(entries)
        selected, notes = sampling.sample(entries, plan) if plan is not None else (entries, [])
    _check_clusters(suite, pool)
    planned = len(selected)
    if options.limit is not None:
        selected = sampling.limit(selected, options.limit, plan.seed if plan else 0)
    if not selected:
        raise DataError(f"{suite.path}: dataset {origin} has no records to evaluate ({total} read)")
    return LoadedData(
        entries=selected, pool=pool, origin=origin, total=total, planned=planned, notes=tuple(notes)
    )


def _check_clusters(suite: Suite, items: list[Item]) -> None:
    key = suite.spec.cluster_by
    missing = next((item for item in items if key is not None and item.cluster(key) is None), None)
    if missing is not None:
        raise DataError(
            f"{suite.path}: cluster_by '{key}': record {missing.id} ({missing.origin}) has no tag or field "
            f"'{key}'; name a tag ({', '.join(sorted(missing.tags)) or 'none'}) or a field "
            f"({', '.join(sorted(missing.fields))})"
        )


def _locate(suite: Suite, options: DataOptions, adapter: ModuleType) -> tuple[str, Iterator[RawRecord]]:
    dataset = suite.spec.dataset
    read_local: Callable[[Path], Iterator[RawRecord]] = getattr(adapter, "read_records", read_file)
    if options.mode == "sample":
        if not dataset.sample:
            raise DataError(f"{suite.path}: suite '{suite.name}' declares no bundled sample (dataset.sample)")
        path = suite.resolve(dataset.sample)
        return f"bundled sample {path}", _checked(read_local, path, suite, "dataset.sample")
    if options.data_dir is not None and dataset.local:
        path = options.data_dir / dataset.local
        return str(path), _checked(read_local, path, suite, f"--data-dir {options.data_dir} + dataset.local")
    source = dataset.source or dataset.local
    if source is None:
        raise DataError(
            f"{suite.path}: suite '{suite.name}' has no dataset.source; point --data-dir (or {DATA_DIR_ENV}) "
            f"at a folder holding {dataset.local}, or run the bundled sample with --data sample"
        )
    if source.startswith(HF_PREFIX):
        return source, _hf_records(suite, source)
    path = suite.resolve(source)
    return str(path), _checked(read_local, path, suite, "dataset.source")


def _checked(read: Callable[[Path], Iterator[RawRecord]], path: Path, suite: Suite, how: str) -> Iterator[RawRecord]:
    if not path.exists():
        raise DataError(
            f"{suite.path}: data for suite '{suite.name}' not found at {path} (from {how}). {_how_to_provide(suite)}"
        )
    return read(path)


def _hf_records(suite: Suite, source: str) -> Iterator[RawRecord]:
    dataset = suite.spec.dataset
    try:
        return iter(list(read_hf(source[len(HF_PREFIX) :], dataset.split, dataset.revision)))
    except DataError as exc:
        raise DataError(f"{suite.path}: suite '{suite.name}': {exc}. {_how_to_provide(suite)}") from None


def _how_to_provide(suite: Suite) -> str:
    dataset = suite.spec.dataset
    hints = []
    if dataset.local:
        hints.append(f"put a local copy at DIR/{dataset.local} and pass --data-dir DIR (or set {DATA_DIR_ENV})")
    if dataset.sample:
        hints.append("run the bundled sample with --data sample")
    return ("To fix: " + "; or ".join(hints) + ".") if hints else ""


def _adapt(
    records: Iterator[RawRecord], to_item: Callable[[RawRecord, Mapping[str, Any]], Item], options: Mapping[str, Any]
) -> Iterator[Item | BadRecord]:
    for position, record in enumerate(records, start=1):
        fallback_id = _fallback_id(record, position)
        if record.error is not None:
            yield BadRecord(fallback_id, record.origin, record.error)
            continue
        try:
            item = to_item(record, options)
        except RecordError as exc:
            yield BadRecord(fallback_id, record.origin, f"record {fallback_id}: {exc}")
            continue
        changed = {key: value for key, value in record.data.items() if nfc(value) != value}
        yield dataclasses.replace(item, original_text=changed) if changed else item


def _fallback_id(record: RawRecord, position: int) -> str:
    """The record's own id when it has a usable one, else its position in the source."""
    given = record.data.get("id") if record.data is not None else None
    if isinstance(given, str | int) and str(given).strip():
        return str(given).strip()
    return f"record-{position}"


def _dedupe(entries: Iterator[Item | BadRecord], *, content_ids: bool) -> Iterator[Item | BadRecord]:
    """Each id once: a repeated content-derived id is the same record again (dropped), any other
    repeat is an error naming both places."""
    origins: dict[str, str] = {}
    for entry in entries:
        seen = origins.get(entry.id)
        if seen is None:
            origins[entry.id] = "" if content_ids else entry.origin
            yield entry
        elif not content_ids:
            raise DataError(f"duplicate id '{entry.id}': {seen} and {entry.origin}")
