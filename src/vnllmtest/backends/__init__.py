"""Model backends (transformers, replay) behind one interface, and a log of every model load."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from vnllmtest.backends.base import Backend, Generation, HFSettings, ModelError, Request
from vnllmtest.backends.registry import ModelSpec, parse_model_specs

__all__ = ["Backend", "Generation", "HFSettings", "LoadEvent", "ModelError", "ModelSpec", "Request", "load_backend", "parse_model_specs"]


@dataclass(frozen=True)
class LoadEvent:
    """One model load in this process: the evidence that each model is loaded once per run."""

    label: str
    fingerprint: str
    pid: int
    seconds: float


LOAD_LOG: list[LoadEvent] = []


def load_backend(spec: ModelSpec, hf_settings: HFSettings | None = None) -> Backend:
    """Load the model a spec names and record the load in LOAD_LOG."""
    started = time.perf_counter()
    if spec.kind == "replay":
        from vnllmtest.backends.replay import ReplayBackend

        backend: Backend = ReplayBackend(spec.label, Path(spec.target))
    else:
        from vnllmtest.backends.hf import HFBackend

        backend = HFBackend(spec, hf_settings or HFSettings())
    LOAD_LOG.append(LoadEvent(spec.label, backend.fingerprint, os.getpid(), time.perf_counter() - started))
    return backend
