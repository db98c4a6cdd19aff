"""Model backends (transformers, replay) behind one interface, and a log of every model load."""

from __future__ import annotations

from pathlib import Path

from vnllmtest.backends.base import (
    LOAD_LOG,
    Backend,
    Generation,
    HFSettings,
    LoadEvent,
    ModelError,
    Request,
)
from vnllmtest.backends.server_http import ServerSettings
from vnllmtest.backends.registry import ModelSpec, parse_model_specs

__all__ = [
    "LOAD_LOG",
    "Backend",
    "Generation",
    "HFSettings",
    "LoadEvent",
    "ModelError",
    "ModelSpec",
    "Request",
    "ServerSettings",
    "load_backend",
    "parse_model_specs",
]


def load_backend(
    spec: ModelSpec, hf_settings: HFSettings | None = None, server_settings: ServerSettings | None = None
) -> Backend:
    """The backend for a model spec; local weights load on first use (see LOAD_LOG)."""
    if spec.kind == "replay":
        from vnllmtest.backends.replay import ReplayBackend

        return ReplayBackend(spec.label, Path(spec.target))
    if spec.kind == "openai":
        from vnllmtest.backends.openai_api import OpenAIBackend

        return OpenAIBackend(spec, server_settings or ServerSettings())
    from vnllmtest.backends.hf import HFBackend

    return HFBackend(spec, hf_settings or HFSettings())
