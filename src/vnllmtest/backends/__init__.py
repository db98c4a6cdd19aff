"""Model backends (transformers, OpenAI-compatible servers, replay, installed kinds) behind one interface,
and a log of every model load."""

from __future__ import annotations

from vnllmtest.backends.base import (
    LOAD_LOG,
    Backend,
    Generation,
    HFSettings,
    LoadEvent,
    ModelError,
    Request,
    ServerSettings,
)
from vnllmtest.backends.registry import ModelSpec, parse_model_specs
from vnllmtest.extensions import BACKENDS, ExtensionError
from vnllmtest.timing import phase

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
    """The backend for a model spec, by its kind (vnllmtest.extensions.BACKENDS); local weights load on
    first use (see LOAD_LOG)."""
    try:
        kind = BACKENDS.get(spec.kind)
    except ExtensionError as exc:
        raise ModelError(f"model '{spec.text}': {exc}") from None
    with phase("load"):
        return kind.load(spec, hf_settings or HFSettings(), server_settings or ServerSettings())
