"""Content-addressed prediction cache in SQLite (WAL): safe to share between processes and runs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def cache_key(fingerprint: str, mode: str, prompt: str, **parameters: Any) -> str:
    """Key = model fingerprint + scoring mode + rendered prompt + generation parameters."""
    material = json.dumps([SCHEMA_VERSION, fingerprint, mode, prompt, parameters], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class PredictionCache:
    """Maps cache keys to JSON results; each batch is committed in one transaction."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "predictions.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS predictions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM predictions WHERE key IN ({marks})", chunk)
            found.update((key, json.loads(value)) for key, value in rows)
        return found

    def put_many(self, entries: Mapping[str, dict[str, Any]]) -> None:
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in entries.items()]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO predictions (key, value) VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
