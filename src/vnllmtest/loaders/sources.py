"""Reading raw records from local files (JSONL, JSON, CSV, Parquet) and Hugging Face datasets."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vnllmtest.loaders.base import DataError, RawRecord, shown
from vnllmtest.loaders.jsontext import flaw, parse, parse_object, wide_encoding
from vnllmtest.loaders.paths import DataRoot, regular_file

HF_PREFIX = "hf://"
# One record's bound: bytes of a JSONL line, characters of a CSV field. Instructions carrying whole
# documents fit many times over; a runaway quote or a corrupt file does not fill memory.
RECORD_LIMIT = 64 * 2**20


def read_file(path: Path, root: DataRoot) -> Iterator[RawRecord]:
    """Records of a local data file, chosen by its suffix, or of every data file in a folder (by name);
    every file read resolves inside `root`."""
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix.lower() in _READERS)
        files = [resolved for resolved in map(root.check, candidates) if regular_file(resolved)]
        if not files:
            raise DataError(f"{path}: folder holds no data files ({', '.join(sorted(_READERS))})")
        return (record for file in files for record in _READERS[file.suffix.lower()](file))
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported data file type; use one of {', '.join(sorted(_READERS))}")
    if not regular_file(path):
        raise DataError(f"{path}: data file not found")
    return reader(path)


def _refuse_wide_text(path: Path, head: bytes) -> None:
    encoding = wide_encoding(head)
    if encoding:
        raise DataError(f"{path} is {encoding} text (it starts with a byte-order mark); save it as UTF-8")


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        _refuse_wide_text(path, handle.read(4))
        handle.seek(0)
        number = 0
        while raw := handle.readline(RECORD_LIMIT + 1):
            number += 1
            origin = f"{path}:{number}"
            if len(raw) > RECORD_LIMIT and not raw.endswith(b"\n"):
                _skip_line(handle)
                yield RawRecord(origin, None, f"a line longer than {RECORD_LIMIT:,} bytes")
                continue
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if raw.strip():
                data, problem = parse_object(raw)
                yield RawRecord(origin, data, problem)


def _skip_line(handle: BinaryIO) -> None:
    """Read past the rest of an over-long line, a megabyte at a time."""
    while (chunk := handle.readline(2**20)) and not chunk.endswith(b"\n"):
        pass


def _read_json(path: Path) -> Iterator[RawRecord]:
    raw = path.read_bytes()
    _refuse_wide_text(path, raw[:4])
    data, problem, suspect = parse(raw.removeprefix(codecs.BOM_UTF8))
    if problem is not None:
        raise DataError(f"{path}: not a readable JSON file: {problem}")
    rows = data.get("data") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of records (or an object with a 'data' list)")
    for index, row in enumerate(rows):
        origin = f"{path}[{index}]"
        if not isinstance(row, dict):
            yield RawRecord(origin, None, f"expected a JSON object, got {type(row).__name__}")
            continue
        yield RawRecord(origin, row, flaw(row) if suspect else None)


def _read_csv(path: Path) -> Iterator[RawRecord]:
    """Rows as records named `FILE row N (line L)`: N counts data rows, L is the file line the row starts on
    (a quoted field may span lines). Anything that stops the parser is a DataError naming that place."""
    csv.field_size_limit(max(csv.field_size_limit(), RECORD_LIMIT))  # process-wide, so only ever raised
    with path.open("rb") as handle:
        _refuse_wide_text(path, handle.read(4))
        handle.seek(0)
        rows = csv.reader(_text_lines(path, handle), strict=True)
        header = _csv_row(path, rows, "header")
        if header is None:
            raise DataError(f"{path} has no header line (an empty CSV file)")
        repeated = next((name for position, name in enumerate(header) if name in header[:position]), None)
        if repeated is not None:
            raise DataError(f"{path}: the header names column '{shown(repeated, 60)}' twice")
        number = 0
        while True:
            where = f"row {number + 1} (line {rows.line_num + 1})"
            row = _csv_row(path, rows, where)
            if row is None:
                return
            if not row:  # a blank line
                continue
            number += 1
            origin = f"{path} {where}"
            if len(row) != len(header):
                yield RawRecord(origin, None, f"{len(row)} fields, the header has {len(header)}")
            else:
                yield RawRecord(origin, dict(zip(header, row, strict=True)))


def _text_lines(path: Path, handle: BinaryIO) -> Iterator[str]:
    """The file's lines as text (line ends kept, a leading UTF-8 byte-order mark dropped)."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} line {number}: not valid UTF-8 (byte {exc.start} of the line)") from None


def _csv_row(path: Path, rows: Iterator[list[str]], where: str) -> list[str] | None:
    """The next row (None at the end), checked; a DataError naming `where` when it cannot be read."""
    try:
        row = next(rows, None)
    except csv.Error as exc:
        problem = f"a field longer than {RECORD_LIMIT:,} characters" if "field limit" in str(exc) else str(exc)
        raise DataError(f"{path} {where}: {problem}") from None
    if row is not None and any(len(field) > RECORD_LIMIT for field in row):
        raise DataError(f"{path} {where}: a field longer than {RECORD_LIMIT:,} characters")
    if row is not None and any("\x00" in field for field in row):
        raise DataError(f"{path} {where}: holds a NUL character; a CSV file is text (UTF-16 without a BOM?)")
    return row


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches():
            for data in batch.to_pylist():
                yield RawRecord(f"{path} row {row}", data)
                row += 1
    except (pyarrow.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file (at row {row}: {shown(exc)})") from None


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
