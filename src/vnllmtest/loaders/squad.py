"""SQuAD 2.0-shaped extractive QA records (UIT-ViQuAD 2.0): context, question, answers, is_impossible."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vnllmtest.clipping import described
from vnllmtest.extensions import DatasetAdapter
from vnllmtest.loaders.base import (
    Item,
    RawRecord,
    RecordError,
    nfc,
    record_id,
    require_text,
)


def _answer_texts(answers: object) -> list[str]:
    if isinstance(answers, dict):
        texts = answers.get("text", [])
    elif isinstance(answers, list):
        texts = [a.get("text") if isinstance(a, dict) else a for a in answers]
    else:
        raise RecordError("answers", "expected {'text': [...], 'answer_start': [...]} or a list of answers")
    if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
        raise RecordError("answers", "every answer text must be a non-empty string")
    return list(dict.fromkeys(nfc(texts)))


def to_item(record: RawRecord, options: Mapping[str, Any]) -> Item:
    data = record.data
    item_id = record_id(data)
    context = require_text(data, "context")
    question = require_text(data, "question")
    references = _answer_texts(data.get("answers", []))
    impossible = data.get("is_impossible", not references)
    if not isinstance(impossible, bool):
        raise RecordError("is_impossible", f"expected true or false, got {described(impossible, 80)}")
    if impossible:
        references = []
    elif not references:
        raise RecordError("answers", "no answer given but is_impossible is false")
    title = data.get("title") or ""
    return Item(
        id=item_id,
        fields={"id": item_id, "title": nfc(str(title)), "context": context, "question": question},
        references=tuple(references),
        tags={"answerable": "NoAns" if impossible else "HasAns"},
        origin=record.origin,
    )


ADAPTER = DatasetAdapter(to_item)
