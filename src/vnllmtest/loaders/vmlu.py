"""VMLU multiple-choice records: `id` ("SS-NNNN", SS = subject), `question`, `choices` ("A. ..."), `answer`.
With the option `answers: hidden` (the test split, whose answers are not public) records have no `answer`,
and any they have is ignored: such items have no references and are answered for a leaderboard submission."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vnllmtest.clipping import described
from vnllmtest.dataset_spec import HIDDEN_ANSWERS
from vnllmtest.extensions import DatasetAdapter
from vnllmtest.loaders.base import (
    Item,
    RawRecord,
    RecordError,
    nfc,
    record_id,
    require_text,
)

_LABELLED = re.compile(r"^\s*([A-Z])\s*[.):]\s*")
_SUBJECT_ID = re.compile(r"^(\d{2})-\d+$")
# VMLU's four categories by subject code, as published with the benchmark.
CATEGORIES = (("STEM", 1, 21), ("Social Science", 22, 31), ("Humanities", 32, 49), ("Other", 50, 58))


def category_of(subject: int) -> str | None:
    return next((name for name, low, high in CATEGORIES if low <= subject <= high), None)


def to_item(record: RawRecord, options: Mapping[str, Any]) -> Item:
    data = record.data
    item_id = record_id(data)
    question = require_text(data, "question")
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise RecordError("choices", "expected a list of at least two options like 'A. ...'")
    labels = []
    for position, choice in enumerate(choices, start=1):
        match = _LABELLED.match(choice) if isinstance(choice, str) else None
        if match is None:
            raise RecordError(
                "choices", f"option {position} does not start with a label like 'A. ': {described(choice, 80)}"
            )
        labels.append(match.group(1))
    expected = [chr(ord("A") + i) for i in range(len(choices))]
    if labels != expected:
        raise RecordError("choices", f"labels {''.join(labels)} are not {''.join(expected)} in order")
    references = () if options.get("answers") == HIDDEN_ANSWERS else (_answer(data, labels),)
    tags = {}
    subject = _SUBJECT_ID.match(item_id)
    if subject:
        tags["subject"] = subject.group(1)
        category = category_of(int(subject.group(1)))
        if category:
            tags["category"] = category
    return Item(
        id=item_id,
        fields={"id": item_id, "question": question, "choices": nfc(choices), "labels": labels},
        references=references,
        labels=tuple(labels),
        tags=tags,
        origin=record.origin,
    )


def _answer(data: Mapping[str, Any], labels: list[str]) -> str:
    answer = require_text(data, "answer").strip()
    if answer not in labels:
        raise RecordError("answer", f"{described(answer, 80)} is not one of the option labels {', '.join(labels)}")
    return answer


ADAPTER = DatasetAdapter(to_item, options={"answers": ("given", HIDDEN_ANSWERS)})
