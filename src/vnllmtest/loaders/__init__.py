"""Dataset loading: find a suite's data, read records, adapt them to items, sample deterministically."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vnllmtest.clipping import shown
from vnllmtest.extensions import ADAPTERS, DatasetAdapter
from vnllmtest.loaders import sampling
from vnllmtest.loaders.base import (
    BadRecord,
    DataError,
    Item,
    RawRecord,
    RecordError,
    nfc,
    usable_id,
)
from vnllmtest.loaders.paths import DataRoot, refuse_url
from vnllmtest.loaders.sources import HF_PREFIX, read_file, read_hf

if TYPE_CHECKING:
    from vnllmtest.suite import Suite

DATA_DIR_ENV = "VNLLMTEST_DATA_DIR"

__all__ = ["BadRecord", "DataError", "DataOptions", "Item", "LoadedData", "load_data"]


@dataclass(frozen=True)
class DataOptions:
    """Where data comes from for this run: the declared source (`full`) or the bundled `sample`."""

    mode: Literal["full", "sample"] = "full"
    data_dir: Path | None = None
    limit: int | None = None
    allow_outside: bool = False  # --allow-outside-data: read paths outside the suite's folder or --data-dir

    @classmethod
    def from_environment(
        cls, mode: str, data_dir: str | None, limit: int | None, allow_outside: bool = False
    ) -> DataOptions:
        chosen = data_dir or os.environ.get(DATA_DIR_ENV) or None
        data_root = Path(chosen).resolve() if chosen else None
        return cls(mode=mode, data_dir=data_root, limit=limit, allow_outside=allow_outside)


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
    adapter = ADAPTERS.get(suite.spec.dataset.adapter)
    origin, records = _locate(suite, options, adapter)
    repeats: list[str] = []
    stream = _dedupe(
        _adapt(records, adapter.to_item, suite.spec.dataset.options),
        content_ids=adapter.content_ids,
        notes=repeats,
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
        entries=selected, pool=pool, origin=origin, total=total, planned=planned, notes=(*repeats, *notes)
    )


def _check_clusters(suite: Suite, items: list[Item]) -> None:
    key = suite.spec.cluster_by
    missing = next((item for item in items if key is not None and item.cluster(key) is None), None)
    if missing is not None:
        raise DataError(
            f"{suite.path}: cluster_by '{key}': record {missing.id} ({missing.origin}) has no tag or field "
            f"'{key}'; name a tag ({shown(', '.join(sorted(missing.tags)) or 'none')}) or a field "
            f"({shown(', '.join(sorted(missing.fields)))})"
        )


def _locate(suite: Suite, options: DataOptions, adapter: DatasetAdapter) -> tuple[str, Iterator[RawRecord]]:
    dataset = suite.spec.dataset
    for key in ("source", "local", "sample"):
        value = getattr(dataset, key)
        if value:
            _named(suite, f"dataset.{key}", refuse_url, value, key == "source")
    read: Callable[[Path, DataRoot], Iterator[RawRecord]] = adapter.read_records or read_file
    folder = DataRoot(None if options.allow_outside else suite.path.parent.resolve(), "the suite's folder")
    block = "submission" if suite.spec.answers_hidden else "dataset"  # where the suite file names the data
    if options.mode == "sample":
        if not dataset.sample:
            raise DataError(f"{suite.path}: suite '{suite.name}' declares no bundled sample ({block}.sample)")
        origin, records = _local(suite, read, folder, f"{block}.sample", dataset.sample, f"{block}.sample")
        return f"bundled sample {origin}", records
    if options.data_dir is not None and dataset.local:
        base = options.data_dir.resolve()
        data_dir = DataRoot(None if options.allow_outside else base, "--data-dir", follow_links=True)
        how = f"--data-dir {options.data_dir} + {block}.local"
        return _local(suite, read, data_dir, f"{block}.local", dataset.local, how, base=base)
    source = dataset.source or dataset.local
    if source is None:
        raise DataError(f"{suite.path}: suite '{suite.name}' has no data for --data full. {_how_to_provide(suite)}")
    if source.startswith(HF_PREFIX):
        return source, _hf_records(suite, source)
    key = "dataset.source" if dataset.source else f"{block}.local"
    return _local(suite, read, folder, key, source, key)


def _local(
    suite: Suite,
    read: Callable[[Path, DataRoot], Iterator[RawRecord]],
    root: DataRoot,
    key: str,
    written: str,
    how: str,
    base: Path | None = None,
) -> tuple[str, Iterator[RawRecord]]:
    """The records at `written` (relative to `base`, else to the suite's folder), confined to `root`;
    every DataError names the suite file and `key`."""
    path = _named(suite, key, root.check, (base or suite.path.parent) / written, written)
    if not path.exists():
        raise DataError(
            f"{suite.path}: data for suite '{suite.name}' not found at {path} (from {how}). {_how_to_provide(suite)}"
        )
    return str(path), _read_named(suite, key, read, path, root)


def _named(suite: Suite, key: str, check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except DataError as exc:
        raise DataError(f"{suite.path}: {key}: {exc}") from None


def _read_named(
    suite: Suite, key: str, read: Callable[[Path, DataRoot], Iterator[RawRecord]], path: Path, root: DataRoot
) -> Iterator[RawRecord]:
    try:
        yield from read(path, root)
    except DataError as exc:
        raise DataError(f"{suite.path}: {key}: {exc}") from None


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
    return usable_id(record.data) or f"record-{position}"


def _dedupe(entries: Iterator[Item | BadRecord], *, content_ids: bool, notes: list[str]) -> Iterator[Item | BadRecord]:
    """Each id once. A repeated content-derived id is the same record again and is dropped; one whose
    reference differs is dropped too, and counted in `notes`. Any other repeat is an error naming both places."""
    first: dict[str, str | int] = {}  # id -> origin, or for content ids a digest of the references
    differing, example = 0, ""
    for entry in entries:
        mark = hash(getattr(entry, "references", ())) if content_ids else entry.origin
        seen = first.get(entry.id)
        if seen is None:
            first[entry.id] = mark
            yield entry
        elif not content_ids:
            raise DataError(f"duplicate id '{entry.id}': {seen} and {entry.origin}")
        elif seen != mark:
            differing, example = differing + 1, example or entry.origin
    if differing:
        notes.append(
            f"{differing} record(s) repeat an earlier record's content with another reference (first: {example}); "
            "each was dropped and the earlier one kept"
        )
