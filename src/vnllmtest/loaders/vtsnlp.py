"""VTSNLP instruct_general_dataset rows: `category`, `instruct`, `input`, `output` (ids derived from content)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from vnllmtest.extensions import DatasetAdapter
from vnllmtest.loaders.base import Item, RawRecord, record_id, require_text


def to_item(record: RawRecord, options: Mapping[str, Any]) -> Item:
    data = record.data
    category = require_text(data, "category").strip()
    instruct = require_text(data, "instruct")
    given_input = require_text(data, "input", allow_empty=True) if data.get("input") is not None else ""
    output = require_text(data, "output")
    given_id = data.get("id") not in (None, "")
    item_id = record_id(data) if given_id else _content_id(category, instruct, given_input)
    return Item(
        id=item_id,
        fields={"id": item_id, "category": category, "instruct": instruct, "input": given_input},
        references=(output,),
        tags={"category": category},
        origin=record.origin,
    )


def _content_id(category: str, instruct: str, given_input: str) -> str:
    """Stable id from the content, so sampling does not depend on row order."""
    digest = hashlib.sha256(f"{instruct}\x00{given_input}".encode()).hexdigest()[:10]
    return f"{category}-{digest}"


ADAPTER = DatasetAdapter(to_item, content_ids=True)
