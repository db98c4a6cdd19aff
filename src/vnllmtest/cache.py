"""Content-addressed prediction cache in SQLite (WAL): safe to share between processes and runs. Table
`predictions` holds the models' answers; `prompts` the prompts rendered for them (vnllmtest.rendering).

A cache that cannot be opened is a CacheError before any model runs. A cache that fails later (a full
disk, a file corrupted under the run) is switched off at its first failure: `fault` says what happened,
the run goes on without it and fails at the end, so nothing is recomputed item by item and nothing
passes because the cache broke. A malformed entry is recomputed and counted in `malformed`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# 2: keyed by what a prompt is rendered from (Request.source) where the backend renders at a cost, and the
# rendered prompts themselves cached (vnllmtest.rendering). Keys built from the prompt text keep the layout
# of version 1, so that the answers of backends keyed that way (OpenAI-compatible, third-party) stay found.
SCHEMA_VERSION = 2
TABLES = ("predictions", "prompts")
FIX = "re-run with --no-cache, or point --cache-dir at a writable folder (or delete the file to start afresh)"


class CacheError(Exception):
    """The prediction cache cannot be used; the message names the file and the fix."""


def cache_key(fingerprint: str, kind: str, **parameters: Any) -> str:
    """Key = model fingerprint (or another owner) + kind of entry (a scoring mode, "prompt") + what decides
    the entry: the prompt or what it was rendered from, generation parameters..."""
    if "prompt" in parameters:  # the prompt text: version 1's layout (see SCHEMA_VERSION)
        prompt = parameters.pop("prompt")
        material = json.dumps([1, fingerprint, kind, prompt, parameters], ensure_ascii=False, sort_keys=True)
    else:
        material = json.dumps([SCHEMA_VERSION, fingerprint, kind, parameters], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class PredictionCache:
    """Maps cache keys to JSON results; each batch is committed in one transaction."""

    def __init__(self, folder: Path):
        self.path = folder / "predictions.sqlite"
        self.fault: str | None = None
        self.malformed = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for table in TABLES:
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._db.execute(f"SELECT key, value FROM {table} LIMIT 1").fetchall()
            self._db.execute("BEGIN IMMEDIATE")  # the write lock: a read-only file or folder fails here
            self._db.execute("ROLLBACK")
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(self._describe(exc)) from None

    def get_many(self, keys: Iterable[str], table: str = "predictions") -> dict[str, dict[str, Any]]:
        """The cached values of `keys` in `table` (one of TABLES); none once the cache has failed."""
        assert table in TABLES, table
        found: dict[str, dict[str, Any]] = {}
        keys = list(keys)
        try:
            for start in range(0, len(keys), 500):
                if self.fault:
                    break
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, value FROM {table} WHERE key IN ({marks})", chunk)
                for key, value in rows:
                    entry = _entry(value)
                    if entry is None:
                        self.malformed += 1
                    else:
                        found[key] = entry
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)
        return found

    def put_many(self, entries: Mapping[str, dict[str, Any]], table: str = "predictions") -> None:
        """Store a batch's results in `table` in one transaction; nothing once the cache has failed."""
        assert table in TABLES, table
        if self.fault:
            return
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in entries.items()]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(f"INSERT OR REPLACE INTO {table} (key, value) VALUES (?, ?)", rows)
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)

    def close(self) -> None:
        self._db.close()

    def _fail(self, exc: BaseException) -> None:
        self.fault = self._describe(exc) + "; the run went on without the cache"

    def _describe(self, exc: BaseException) -> str:
        return f"prediction cache {self.path}: {type(exc).__name__}: {exc}; {FIX}"


def _entry(value: Any) -> dict[str, Any] | None:
    """A stored value read back, or None when it is not the JSON object the cache wrote."""
    try:
        entry = json.loads(value)
    except (TypeError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None
