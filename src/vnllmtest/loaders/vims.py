"""ViMs multi-document summarisation: the original release folder layout, or a JSONL of clusters.

Folder layout: `original/Cluster_NNN/original/K.txt` (header lines, then `Content:` and the body),
`summary/Cluster_NNN/{0,1}.gold.txt` and `S3_summary/Cluster_NNN/{0,1}.s3.txt` (`label<TAB>sentence`).
A JSONL record holds `id`, `documents` (list of {title, content}), `summaries` and, for the S3
input mode, `selected_sentences`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vnllmtest.extensions import DatasetAdapter
from vnllmtest.loaders.base import (
    DataError,
    Item,
    RawRecord,
    RecordError,
    nfc,
    record_id,
)
from vnllmtest.loaders.paths import DataRoot, regular_file
from vnllmtest.loaders.sources import read_file


def read_records(path: Path, root: DataRoot) -> Iterator[RawRecord]:
    if not path.is_dir():
        yield from read_file(path, root)
        return
    original = path / "original"
    if not original.is_dir():
        raise DataError(f"{path}: not a ViMs folder (expected {original})")
    for cluster in sorted(p for p in original.iterdir() if p.is_dir()):
        root.check(cluster)  # its name becomes an id and an origin
        yield _read_cluster(path, cluster.name, root)


def _read_cluster(root: Path, name: str, confined: DataRoot) -> RawRecord:
    origin = str(root / "original" / name)

    def text(path: Path) -> str:
        resolved = confined.check(path)
        if not regular_file(resolved):
            raise ValueError(f"{path}: not a file")
        try:
            return resolved.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not valid UTF-8 (byte {exc.start})") from None

    try:
        documents = [
            _parse_document(text(doc), doc)
            for doc in sorted((root / "original" / name / "original").glob("*.txt"), key=_numeric_stem)
        ]
        summaries = [text(p) for p in sorted((root / "summary" / name).glob("*.gold.txt"))]
        selections = [text(p) for p in sorted((root / "S3_summary" / name).glob("*.s3.txt"))]
    except (OSError, ValueError) as exc:
        return RawRecord(origin, None, str(exc))
    data = {"id": name, "documents": documents, "summaries": summaries, "selected_sentences": _selected(selections)}
    return RawRecord(origin, data)


def _numeric_stem(path: Path) -> tuple[int, str]:
    return (int(path.stem), "") if path.stem.isdigit() else (1 << 30, path.stem)


def _parse_document(text: str, path: Path) -> dict[str, str]:
    header, separator, body = text.partition("\nContent:")
    if not separator:
        raise ValueError(f"{path}: no 'Content:' line")
    fields = {}
    for line in header.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip().lower().replace(" ", "_")] = value.strip()
    return {"title": fields.get("title", ""), "summary": fields.get("summary", ""), "content": body.strip()}


def _selected(selections: list[str]) -> list[str]:
    """Sentences labelled 1 in the S3 files, in file order, without repeats."""
    chosen: dict[str, None] = {}
    for text in selections:
        for line in text.splitlines():
            label, tab, sentence = line.partition("\t")
            if tab and label.strip() == "1":
                chosen[sentence.strip()] = None
    return list(chosen)


def to_item(record: RawRecord, options: Mapping[str, Any]) -> Item:
    """A cluster; `passages` holds what the prompt summarises: the S3 selected sentences
    (option `input: s3`, the published protocol) or each full document (`input: documents`)."""
    data = record.data
    item_id = record_id(data)
    documents = data.get("documents")
    if not isinstance(documents, list) or not documents:
        raise RecordError("documents", "expected a non-empty list of documents")
    for position, document in enumerate(documents, start=1):
        if not isinstance(document, dict) or not str(document.get("content", "")).strip():
            raise RecordError("documents", f"document {position} has no 'content'")
    summaries = data.get("summaries")
    if not isinstance(summaries, list) or not summaries or not all(isinstance(s, str) and s.strip() for s in summaries):
        raise RecordError("summaries", "expected a non-empty list of gold summaries")
    selected = nfc(list(data.get("selected_sentences") or []))
    documents = nfc(documents)
    mode = options.get("input", "s3")
    if mode == "s3":
        if not selected:
            raise RecordError("selected_sentences", "no sentence labelled 1 in the S3 files (needed by input: s3)")
        passages = selected
    else:
        passages = [_document_text(document) for document in documents]
    return Item(
        id=item_id,
        fields={
            "id": item_id,
            "input_mode": mode,
            "passages": passages,
            "documents": documents,
            "selected_sentences": selected,
        },
        references=tuple(nfc([s.strip() for s in summaries])),
        origin=record.origin,
    )


def _document_text(document: Mapping[str, Any]) -> str:
    title = str(document.get("title") or "").strip()
    content = str(document["content"]).strip()
    return f"{title}\n{content}" if title else content


ADAPTER = DatasetAdapter(to_item, read_records=read_records, options={"input": ("s3", "documents")})
