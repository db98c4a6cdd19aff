"""Deterministic sampling: each record gets a rank from a hash of (seed, id), so the chosen subset
does not depend on the order the records arrive in, and two runs or two models see the same items."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

from vnllmtest.loaders.base import BadRecord, Item
from vnllmtest.suite import Sampling

Entry = TypeVar("Entry", Item, BadRecord)


def rank(seed: int, item_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()


def stratum(entry: Item | BadRecord, key: str | None) -> str:
    if key is None:
        return ""
    return str(entry.tags.get(key, getattr(entry, "fields", {}).get(key, "")))


def sample(entries: Sequence[Entry], sampling: Sampling) -> list[Entry]:
    """The sampled subset, in source order: `count` or `fraction` per stratum (or overall)."""
    strata: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        strata[stratum(entry, sampling.stratify)].append(entry)
    chosen: set[int] = set()
    for members in strata.values():
        size = sampling.count if sampling.count is not None else max(1, round(sampling.fraction * len(members)))
        ranked = sorted(members, key=lambda e: rank(sampling.seed, e.id))
        chosen.update(id(entry) for entry in ranked[:size])
    return [entry for entry in entries if id(entry) in chosen]


def limit(entries: Sequence[Entry], count: int, seed: int = 0) -> list[Entry]:
    """At most `count` entries, chosen by the same hash order, in source order."""
    keep = {id(e) for e in sorted(entries, key=lambda e: rank(seed, e.id))[:count]}
    return [entry for entry in entries if id(entry) in keep]
