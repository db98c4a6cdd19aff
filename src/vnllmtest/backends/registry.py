"""Model specs: the strings a user types after --model, resolved to something a backend can load."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from vnllmtest.backends.base import ModelError

REPLAY_PREFIX = "replay:"
HF_PREFIX = "hf:"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class Alias:
    name: str
    description: str = ""
    hf: str | None = None
    bundled: str | None = None
    end_tokens: tuple[str, ...] = ()
    trust_remote_code: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A parsed --model value. `label` names the model in test ids and reports."""

    text: str
    label: str
    kind: Literal["hf", "replay"]
    target: str  # hub id, local folder, bundled model name, or a replay file
    alias: Alias | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.label


def load_aliases() -> dict[str, Alias]:
    raw = yaml.safe_load(resources.files("vnllmtest.backends").joinpath("aliases.yaml").read_text("utf-8"))
    return {
        name: Alias(name=name, **{**entry, "end_tokens": tuple(entry.get("end_tokens", ()))})
        for name, entry in raw.items()
    }


def parse_model_spec(text: str, aliases: dict[str, Alias] | None = None) -> ModelSpec:
    """Resolve an alias, `replay:PATH`, `hf:owner/name`, a local folder or a hub id `owner/name`."""
    aliases = load_aliases() if aliases is None else aliases
    if text.startswith(REPLAY_PREFIX):
        path = Path(text[len(REPLAY_PREFIX):]).expanduser()
        return ModelSpec(text, _replay_label(path), "replay", str(path.resolve()))
    if text in aliases:
        alias = aliases[text]
        return ModelSpec(text, text, "hf", alias.bundled or alias.hf or text, alias)
    if text.startswith(HF_PREFIX):
        return ModelSpec(text, _sanitize(text[len(HF_PREFIX):].split("/")[-1]), "hf", text[len(HF_PREFIX):])
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model '{text}': {path} is a file; give the checkpoint folder")
        return ModelSpec(text, _sanitize(path.resolve().name), "hf", str(path.resolve()))
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return ModelSpec(text, _sanitize(text.split("/")[-1]), "hf", text)
    raise ModelError(
        f"unknown model '{text}': not an alias ({', '.join(sorted(aliases))}), not an existing folder, "
        f"not a hub id like owner/name, and not replay:PATH"
    )


def parse_model_specs(texts: list[str]) -> list[ModelSpec]:
    """Parse every --model value; labels are made unique by suffixing -2, -3..."""
    aliases = load_aliases()
    specs: list[ModelSpec] = []
    taken: set[str] = set()
    for text in texts:
        spec = parse_model_spec(text, aliases)
        label, counter = spec.label, 2
        while label in taken:
            label, counter = f"{spec.label}-{counter}", counter + 1
        taken.add(label)
        specs.append(ModelSpec(spec.text, label, spec.kind, spec.target, spec.alias))
    return specs


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "model"


def _replay_label(path: Path) -> str:
    """The `model` named in the file's records when they agree on one, else the file name."""
    names = set()
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    names.add(record.get("model") if isinstance(record, dict) else None)
    except (OSError, ValueError) as exc:
        raise ModelError(f"replay file {path}: cannot be read ({exc})") from None
    name = names.pop() if len(names) == 1 else None
    return _sanitize(str(name)) if name else _sanitize(path.stem)
