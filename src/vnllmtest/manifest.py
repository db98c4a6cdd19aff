"""The run manifest: versions, machine, options, models (fingerprints, loads) and suites (hashes, data)."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from collections.abc import Iterable, Mapping
from typing import Any

PACKAGES = ("vnllmtest", "pytest", "torch", "transformers", "tokenizers", "numpy", "pytest-xdist", "underthesea")


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def build_manifest(contexts: Iterable[Mapping[str, Any]], options: Mapping[str, Any], model_order: list[str]) -> dict:
    """Merge the per-item run contexts (they travel with each test report, also from xdist workers)."""
    models: dict[str, dict[str, Any]] = {label: {} for label in model_order}
    suites: dict[str, dict[str, Any]] = {}
    back_offs: list[dict[str, Any]] = []  # out-of-memory batches retried smaller, from every process
    judges: dict[str, dict[str, Any]] = {}
    workers: dict[str, str | None] = {}  # xdist worker -> the CUDA_VISIBLE_DEVICES it was pinned to
    cache_faults: list[str] = []
    recomputed: dict[str, int] = {}  # malformed cache entries recomputed, by process (a running count)
    for context in contexts:
        cache = context.get("cache") or {}
        if cache.get("fault") and cache["fault"] not in cache_faults:
            cache_faults.append(cache["fault"])
        process = (context.get("worker") or {}).get("id", "main")
        recomputed[process] = max(recomputed.get(process, 0), cache.get("malformed", 0))
        if context.get("worker"):
            workers[context["worker"]["id"]] = context["worker"]["devices"]
        for label, judge in context.get("judges", {}).items():
            entry = judges.setdefault(label, {"spec": judge["spec"], "loads": []})
            if judge["load"] and judge["load"] not in entry["loads"]:
                entry["loads"].append(judge["load"])
        back_offs += [b for b in context.get("batch_back_offs", []) if b not in back_offs]
        model = models.setdefault(context["model"], {})
        model.setdefault("spec", context["model_spec"])
        model.setdefault("loads", [])
        if context.get("model_fingerprint"):
            model["fingerprint"] = context["model_fingerprint"]
            model["device"] = context["model_device"]
        load = context.get("model_load")
        if load and load not in model["loads"]:
            model["loads"].append(load)
        suites.setdefault(context["suite"], {key: context[key] for key in _SUITE_KEYS if key in context})
    return {
        "versions": versions(),
        "platform": platform.platform(),
        "options": dict(options),
        "models": {label: info for label, info in models.items() if info},
        "suites": suites,
        "judges": judges,
        "batch_back_offs": back_offs,
        "workers": dict(sorted(workers.items())),
        "cache_faults": cache_faults,
        "cache_entries_recomputed": sum(recomputed.values()),
    }


_SUITE_KEYS = (
    "suite_path",
    "suite_sha256",
    "data_origin",
    "records_total",
    "records_selected",
    "sampling",
    "data_notes",
)
