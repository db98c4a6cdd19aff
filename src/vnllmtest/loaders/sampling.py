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


def quotas(strata: dict[str, list[Entry]], plan: Sampling) -> dict[str, int]:
    """How many records each stratum contributes, before capping at what it holds.

    Without `proportions`, `count`/`fraction` apply to each stratum (or to all records when not
    stratified); with `proportions`, `count` (or `fraction` of all records) is the total, shared out.
    """
    if plan.proportions is None:
        if plan.count is not None:
            return {name: plan.count for name in strata}
        return {name: max(1, round(plan.fraction * len(members))) for name, members in strata.items()}
    total = plan.count if plan.count is not None else round(plan.fraction * sum(map(len, strata.values())))
    return {name: round(total * plan.proportions.get(name, 0.0)) for name in strata}


def sample(entries: Sequence[Entry], plan: Sampling) -> tuple[list[Entry], list[str]]:
    """The sampled subset in source order, and notes on strata that held fewer records than asked."""
    strata: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        strata[stratum(entry, plan.stratify)].append(entry)
    wanted = quotas(strata, plan)
    notes = []
    for name in sorted(set(plan.proportions or {}) - set(strata)):
        notes.append(f"{plan.stratify}={name}: wanted {wanted.get(name, 0) or 'some'}, the data has none")
    chosen: set[int] = set()
    for name, members in strata.items():
        ranked = sorted(members, key=lambda e: rank(plan.seed, e.id))
        chosen.update(id(entry) for entry in ranked[: wanted[name]])
        if plan.proportions is not None and wanted[name] > len(members):
            notes.append(f"{plan.stratify}={name}: wanted {wanted[name]}, the data has {len(members)} (all taken)")
    return [entry for entry in entries if id(entry) in chosen], notes


def limit(entries: Sequence[Entry], count: int, seed: int = 0) -> list[Entry]:
    """At most `count` entries, chosen by the same hash order, in source order."""
    keep = {id(e) for e in sorted(entries, key=lambda e: rank(seed, e.id))[:count]}
    return [entry for entry in entries if id(entry) in keep]
