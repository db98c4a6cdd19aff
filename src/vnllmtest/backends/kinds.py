"""vnllmtest's own backend kinds, chosen by the prefixes `hf:`, `openai:` and `replay:` of a --model
value (aliases, local folders and hub ids are `hf` too). Each loads its module only when a model of
its kind loads, so reading model specs never imports torch."""

from __future__ import annotations

import re
from pathlib import Path

from vnllmtest.backends.base import Backend, HFSettings, ModelError, ServerSettings
from vnllmtest.backends.registry import ModelSpec, clean_label
from vnllmtest.extensions import BackendKind


def _parse_hf(text: str, target: str) -> ModelSpec:
    return ModelSpec(text, clean_label(target.split("/")[-1]), "hf", target)


def _load_hf(spec: ModelSpec, hf_settings: HFSettings, server_settings: ServerSettings) -> Backend:
    from vnllmtest.backends.hf import HFBackend

    return HFBackend(spec, hf_settings)


def _parse_openai(text: str, target: str) -> ModelSpec:
    url = target.rstrip("/")
    if not re.match(r"^https?://[^/]+", url):
        raise ModelError(f"model '{text}': expected openai:http(s)://HOST[:PORT]/v1")
    if "@" in re.sub(r"^https?://", "", url).split("/")[0]:  # the message must not repeat the secret
        raise ModelError(
            "an openai: URL holds credentials (USER:PASSWORD@HOST): they would be written into the model's "
            "label, the cache key and the report; put the key in the environment variable --api-key-env names"
        )
    return ModelSpec(text, clean_label(re.sub(r"^https?://", "", url)), "openai", url)


def _load_openai(spec: ModelSpec, hf_settings: HFSettings, server_settings: ServerSettings) -> Backend:
    from vnllmtest.backends.openai_api import OpenAIBackend

    return OpenAIBackend(spec, server_settings)


def _parse_replay(text: str, target: str) -> ModelSpec:
    path = Path(target).expanduser()
    return ModelSpec(text, _replay_label(path), "replay", str(path.resolve()))


def _replay_label(path: Path) -> str:
    """The `model` named in the file's records when they agree on one, else the file name."""
    from vnllmtest.backends.replay import read_predictions  # checks the file: a bad one is a usage error

    names = {prediction.model for prediction in read_predictions(path).values()}
    name = names.pop() if len(names) == 1 else None
    return clean_label(str(name)) if name else clean_label(path.stem)


def _load_replay(spec: ModelSpec, hf_settings: HFSettings, server_settings: ServerSettings) -> Backend:
    from vnllmtest.backends.replay import ReplayBackend

    return ReplayBackend(spec.label, Path(spec.target))


HF = BackendKind(load=_load_hf, parse=_parse_hf)
OPENAI = BackendKind(load=_load_openai, parse=_parse_openai)
REPLAY = BackendKind(load=_load_replay, parse=_parse_replay)
