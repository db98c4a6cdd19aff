"""Reading raw records from local files (JSONL, JSON, CSV, Parquet) and Hugging Face datasets."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from vnllmtest.loaders.base import DataError, RawRecord

HF_PREFIX = "hf://"


def read_file(path: Path) -> Iterator[RawRecord]:
    """Records of a local data file, chosen by its suffix, or of every data file in a folder (by name)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _READERS)
        if not files:
            raise DataError(f"{path}: folder holds no data files ({', '.join(sorted(_READERS))})")
        return (record for file in files for record in _READERS[file.suffix.lower()](file))
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported data file type; use one of {', '.join(sorted(_READERS))}")
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    return reader(path)


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            origin = f"{path}:{number}"
            if not raw.strip():
                continue
            try:
                data = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield RawRecord(origin, None, f"invalid UTF-8 at byte {exc.start}")
                continue
            except json.JSONDecodeError as exc:
                yield RawRecord(origin, None, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(data, dict):
                yield RawRecord(origin, None, f"expected a JSON object, got {type(data).__name__}")
                continue
            yield RawRecord(origin, data)


def _read_json(path: Path) -> Iterator[RawRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from None
    rows = data.get("data") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of records (or an object with a 'data' list)")
    for index, row in enumerate(rows):
        origin = f"{path}[{index}]"
        if isinstance(row, dict):
            yield RawRecord(origin, row)
        else:
            yield RawRecord(origin, None, f"expected a JSON object, got {type(row).__name__}")


def _read_csv(path: Path) -> Iterator[RawRecord]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield RawRecord(f"{path} row {reader.line_num}", row)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    table = pq.ParquetFile(path)
    row = 0
    for batch in table.iter_batches():
        for data in batch.to_pylist():
            yield RawRecord(f"{path} row {row}", data)
            row += 1


_READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}


def read_hf(name: str, split: str | None, revision: str | None) -> Iterator[RawRecord]:
    """Records of a Hugging Face dataset (`datasets` library); DataError when it cannot be reached."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"{HF_PREFIX}{name}: loading from the Hugging Face hub needs `pip install datasets`") from None
    try:
        rows = datasets.load_dataset(name, split=split or "train", revision=revision)
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        raise DataError(f"{HF_PREFIX}{name} (split {split or 'train'}) could not be loaded: {exc}") from None
    for index, data in enumerate(rows):
        yield RawRecord(f"{HF_PREFIX}{name}[{split}] row {index}", data)
