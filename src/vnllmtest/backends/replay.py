"""Replay: score predictions produced elsewhere, read from JSONL `{"id", "prediction", "suite"?, "model"?}`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from vnllmtest.backends.base import Backend, Generation, ModelError, Request


class ReplayBackend(Backend):
    cacheable = False

    def __init__(self, label: str, path: Path):
        self.label = label
        self.path = path
        raw = path.read_bytes()
        self.fingerprint = f"replay:{hashlib.sha256(raw).hexdigest()}"
        self._by_suite: dict[tuple[str | None, str], str] = {}
        for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ModelError(f"{path}:{number}: invalid JSON ({exc})") from None
                self._add(record, number)

    def _add(self, record: object, number: int) -> None:
        where = f"{self.path}:{number}"
        if not isinstance(record, dict) or "id" not in record or "prediction" not in record:
            raise ModelError(f"{where}: expected an object with 'id' and 'prediction'")
        if not isinstance(record["prediction"], str):
            raise ModelError(f"{where}: field 'prediction' must be text, got {type(record['prediction']).__name__}")
        key = (record.get("suite"), str(record["id"]))
        if key in self._by_suite:
            raise ModelError(f"{where}: second prediction for id '{key[1]}'" + (f" in suite '{key[0]}'" if key[0] else ""))
        self._by_suite[key] = record["prediction"]

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [self._lookup(request) for request in requests]

    def _lookup(self, request: Request) -> Generation:
        for key in ((request.suite, request.item_id), (None, request.item_id)):
            if key in self._by_suite:
                return Generation(self._by_suite[key], "stop", 0)
        missing = f"replay file {self.path} has no prediction for id '{request.item_id}' (suite {request.suite})"
        return Generation("", "error", 0, error=missing)
