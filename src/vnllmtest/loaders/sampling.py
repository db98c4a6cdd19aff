"""Deterministic sampling: each record gets a rank from a hash of (seed, id), so the chosen subset
does not depend on the order the records arrive in, and two runs or two models see the same items."""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from vnllmtest.loaders.base import BadRecord, Item

if TYPE_CHECKING:
    from vnllmtest.dataset_spec import Sampling

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
    chosen: set[int] = set()
    for name, members in strata.items():
        ranked = sorted(members, key=lambda e: rank(plan.seed, e.id))
        chosen.update(id(entry) for entry in ranked[: wanted[name]])
    notes = _shortfalls(plan, wanted, Counter({name: len(members) for name, members in strata.items()}))
    return [entry for entry in entries if id(entry) in chosen], notes


def streamable(plan: Sampling) -> bool:
    """Whether each stratum's quota is known before reading (a `count`), so records can be sampled
    as they stream by, keeping only the chosen ones in memory."""
    return plan.count is not None


def sample_stream(entries: Iterable[Entry], plan: Sampling) -> tuple[list[Entry], list[str], int]:
    """What `sample` chooses for a `count` plan, from an iterable read once: per stratum a heap of the
    lowest ranks. Returns the subset in source order, the notes, and how many entries were read."""
    if not streamable(plan):
        raise ValueError("streaming needs a sampling plan with a count")
    heaps: dict[str, list[tuple[bytes, int, Entry]]] = defaultdict(list)
    held: Counter = Counter()
    position = -1
    for position, entry in enumerate(entries):
        name = stratum(entry, plan.stratify)
        held[name] += 1
        quota = plan.count if plan.proportions is None else round(plan.count * plan.proportions.get(name, 0.0))
        key = (_inverted(rank(plan.seed, entry.id)), position, entry)  # heap top: the highest rank kept
        if len(heaps[name]) < quota:
            heapq.heappush(heaps[name], key)
        elif quota and key[0] > heaps[name][0][0]:
            heapq.heapreplace(heaps[name], key)
    chosen = sorted((position, entry) for heap in heaps.values() for _, position, entry in heap)
    wanted = quotas({name: [] for name in held}, plan)
    return [entry for _, entry in chosen], _shortfalls(plan, wanted, held), position + 1


def _inverted(digest: bytes) -> bytes:
    return bytes(255 - byte for byte in digest)


def _shortfalls(plan: Sampling, wanted: dict[str, int], held: Counter) -> list[str]:
    """Notes on strata named in `proportions` that hold fewer records than their share (or none)."""
    if plan.proportions is None:
        return []
    notes = [
        f"{plan.stratify}={name}: wanted {quotas({name: []}, plan)[name] or 'some'}, the data has none"
        for name in sorted(set(plan.proportions) - set(held))
    ]
    notes += [
        f"{plan.stratify}={name}: wanted {wanted[name]}, the data has {count} (all taken)"
        for name, count in held.items()
        if wanted[name] > count
    ]
    return notes


def limit(entries: Sequence[Entry], count: int, seed: int = 0) -> list[Entry]:
    """At most `count` entries, chosen by the same hash order, in source order."""
    keep = {id(e) for e in sorted(entries, key=lambda e: rank(seed, e.id))[:count]}
    return [entry for entry in entries if id(entry) in keep]
