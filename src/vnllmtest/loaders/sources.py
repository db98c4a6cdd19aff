"""Reading raw records from local files (JSONL, JSON, CSV, Parquet) and Hugging Face datasets."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vnllmtest.clipping import described, shown
from vnllmtest.loaders.base import DataError, RawRecord
from vnllmtest.loaders.jsontext import flaw, parse, parse_object
from vnllmtest.loaders.paths import DataRoot, regular_file

HF_PREFIX = "hf://"
# One record's bound: bytes of a JSONL line, characters of a CSV row (its lines together). Instructions
# carrying whole documents fit many times over; a runaway quote or a corrupt file does not fill memory.
RECORD_LIMIT = 64 * 2**20
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_UNDECODED = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as the surrogateescape handler keeps it


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


def refuse_wide_text(head: bytes, what: str, error: type[Exception] = DataError) -> None:
    """`error` when `head` (a file's first bytes) starts with a UTF-16 or UTF-32 byte-order mark:
    the file is read as UTF-8, and `what` (the file, as the message names it) must be saved as such."""
    encoding = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if encoding:
        raise error(f"{what} is {encoding} text (it starts with a byte-order mark); save it as UTF-8")


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        refuse_wide_text(handle.read(4), str(path))
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
    refuse_wide_text(raw[:4], str(path))
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
    (a quoted field may span lines; lines end at CR, LF or CRLF). A row the parser rejects is a bad record
    and reading goes on; a DataError naming the place stops the file where the next row cannot be found."""
    csv.field_size_limit(max(csv.field_size_limit(), RECORD_LIMIT))  # process-wide, so only ever raised
    with path.open("rb") as handle:
        refuse_wide_text(handle.read(4), str(path))
        handle.seek(0)
        lines = _RowLines(io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline=""))
        rows = csv.reader(lines, strict=True)
        header: list[str] | None = []
        while header == []:  # blank lines above the header are skipped
            header, problem = _next_row(path, rows, lines, "header")
        if header is None and problem is None:
            raise DataError(f"{path} has no header line (an empty CSV file)")
        problem = problem or _field_problem(header)
        if problem:
            raise DataError(f"{path} header: {problem}")
        repeated = next((name for position, name in enumerate(header) if name in header[:position]), None)
        if repeated is not None:
            raise DataError(f"{path}: the header names column {described(repeated, 60)} twice")
        number = 0
        while True:
            where = f"row {number + 1} (line {rows.line_num + 1})"
            row, problem = _next_row(path, rows, lines, where)
            if row is None and problem is None:
                return
            if row == []:  # a blank line
                continue
            number += 1
            if row is not None and len(row) > len(header):
                problem = f"{len(row)} fields, the header has {len(header)}"
            elif row is not None:  # a row may leave out empty trailing columns, as spreadsheets save them
                row += [""] * (len(header) - len(row))
                problem = _field_problem(row, header)
            yield RawRecord(f"{path} {where}", None if problem else dict(zip(header, row, strict=True)), problem)


class _LongRow(Exception):
    """A CSV row (its lines together) longer than RECORD_LIMIT characters."""


class _RowLines:
    """A text file's lines for csv.reader (endings kept), read so that one row's lines together never
    hold more than RECORD_LIMIT characters: a runaway quote or a file without line ends stops there."""

    def __init__(self, text: io.TextIOWrapper):
        self.text = text
        self.left = RECORD_LIMIT

    def __iter__(self) -> _RowLines:
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.left + 1)
        if not line:
            raise StopIteration
        if len(line) > self.left:
            raise _LongRow
        self.left -= len(line)
        return line

    def next_row(self) -> None:
        self.left = RECORD_LIMIT


def _next_row(
    path: Path, rows: Iterator[list[str]], lines: _RowLines, where: str
) -> tuple[list[str] | None, str | None]:
    """(row, None); (None, problem) for a row the parser rejected, after which it reads on from the next
    line; (None, None) at the end. A DataError naming `where` when no later row can be found."""
    lines.next_row()
    try:
        return next(rows, None), None
    except _LongRow:
        raise DataError(f"{path} {where}: a row longer than {RECORD_LIMIT:,} characters") from None
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            raise DataError(f"{path} {where}: a quoted field is never closed (unexpected end of data)") from None
        return None, f"not readable as CSV ({exc})"


def _field_problem(row: list[str], names: list[str] | None = None) -> str | None:
    """What makes a parsed row unusable, naming the field (by its column number when `names` is None):
    a byte that is not UTF-8, or a NUL."""
    for position, value in enumerate(row):
        field = f"field {described(names[position], 60)}" if names else f"column {position + 1}"
        undecoded = _UNDECODED.search(value)
        if undecoded:
            start = len(value[: undecoded.start()].encode("utf-8", "surrogateescape"))
            return f"{field}: invalid UTF-8 at byte {start} of the field"
        if "\x00" in value:
            return f"{field}: holds a NUL character; a CSV file is text (UTF-16 without a BOM?)"
    return None


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
    """Records of a Hugging Face dataset (`datasets` library); DataError when it cannot be reached. Without
    offline mode, one quick connection to the hub comes first: the library's retries take half a minute."""
    from vnllmtest import hub

    where = f"{HF_PREFIX}{name} (split {split or 'train'})"
    offline = hub.offline_variable("dataset")
    why = None if offline else hub.unreachable()
    if why:
        raise DataError(
            f"{where} could not be loaded: the hub at {hub.endpoint()} cannot be reached ({why}). If the dataset "
            f"is cached, run with HF_HUB_OFFLINE=1 to use that copy; otherwise download it where the hub can be "
            f"reached: {hub.fetch_commands(name, 'dataset')}"
        )
    try:
        import datasets
    except ImportError:
        raise DataError(f"{HF_PREFIX}{name}: loading from the Hugging Face hub needs `pip install datasets`") from None
    try:
        rows = datasets.load_dataset(name, split=split or "train", revision=revision)
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        if offline:
            raise DataError(
                f"{where} could not be loaded from the local cache ({offline}=1 allows only that): {exc}. If it is not "
                f"cached, download it where the hub can be reached: {hub.fetch_commands(name, 'dataset')}"
            ) from None
        raise DataError(f"{where} could not be loaded: {exc}") from None
    for index, data in enumerate(rows):
        yield RawRecord(f"{HF_PREFIX}{name}[{split}] row {index}", data)
