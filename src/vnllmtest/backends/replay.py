"""Replay: score predictions produced elsewhere, read from JSONL `{"id", "prediction", "suite"?, "model"?}`."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnllmtest.backends.base import Backend, Generation, ModelError, Request
from vnllmtest.clipping import described
from vnllmtest.loaders.base import RecordError, record_id
from vnllmtest.loaders.jsontext import parse_object
from vnllmtest.loaders.sources import refuse_wide_text


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"replay file {path}: cannot be read ({exc.strerror})") from None


@dataclass(frozen=True)
class Prediction:
    id: str  # as item ids are: NFC text, stripped
    prediction: str
    suite: str | None
    model: str | None


def parse_predictions(raw: bytes, path: Path) -> dict[tuple[str | None, str], Prediction]:
    """The file's predictions by (suite, id); a ModelError names the line and field of the first bad record.
    Lines end at newline bytes only: a prediction may hold U+2028 and other line separators."""
    refuse_wide_text(raw[:4], f"replay file {path}", ModelError)
    found: dict[tuple[str | None, str], Prediction] = {}
    for number, line in enumerate(raw.removeprefix(codecs.BOM_UTF8).split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        prediction = _prediction(*parse_object(line), where)
        key = (prediction.suite, prediction.id)
        if key in found:
            suite = f" in suite {described(key[0], 60)}" if key[0] else ""
            raise ModelError(f"{where}: second prediction for id '{key[1]}'{suite}")
        found[key] = prediction
    if not found:
        example = '{"id": "...", "prediction": "..."}'
        raise ModelError(f"replay file {path} holds no predictions; expected JSON lines like {example}")
    return found


def read_predictions(path: Path) -> dict[tuple[str | None, str], Prediction]:
    return parse_predictions(read_bytes(path), path)


def _prediction(record: dict[str, Any] | None, problem: str | None, where: str) -> Prediction:
    if problem is not None or record is None:
        raise ModelError(f"{where}: {problem}")
    if "id" not in record or "prediction" not in record:
        raise ModelError(f"{where}: expected an object with 'id' and 'prediction'")
    try:
        item_id = record_id(record)
    except RecordError as exc:
        raise ModelError(f"{where}: {exc}") from None
    for key in ("prediction", "suite", "model"):
        value = record.get(key)
        if not isinstance(value, str) and (key == "prediction" or value is not None):
            raise ModelError(f"{where}: field '{key}': expected text, got {type(value).__name__}")
    return Prediction(item_id, record["prediction"], record.get("suite"), record.get("model"))


class ReplayBackend(Backend):
    cacheable = False

    def __init__(self, label: str, path: Path):
        self.label = label
        self.path = path
        raw = read_bytes(path)
        self.fingerprint = f"replay:{hashlib.sha256(raw).hexdigest()}"
        self._by_suite = {key: found.prediction for key, found in parse_predictions(raw, path).items()}

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [self._lookup(request) for request in requests]

    def _lookup(self, request: Request) -> Generation:
        for key in ((request.suite, request.item_id), (None, request.item_id)):
            if key in self._by_suite:
                return Generation(self._by_suite[key], "stop", 0)
        missing = f"replay file {self.path} has no prediction for id '{request.item_id}' (suite {request.suite})"
        return Generation("", "error", 0, error=missing)
