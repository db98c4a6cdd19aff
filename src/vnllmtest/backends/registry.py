"""Model specs: the strings a user types after --model, resolved to something a backend can load."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from vnllmtest.backends.base import ModelError
from vnllmtest.extensions import BACKENDS, BackendKind, ExtensionError

_PREFIX = re.compile(r"^([a-z][a-z0-9_]*):")  # a backend kind's name, as in openai:URL
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_MODIFIER = re.compile(r"^(\w+)=(.+)$")
MODIFIERS = {
    "adapter": "a LoRA adapter folder on top of the model",
    "model": "the served model name (openai:)",
    "endpoint": "chat or completions (openai:)",
}


@dataclass(frozen=True)
class JudgeLimits:
    """Caps on the budgets a model gets as a judge, below those the suite declares: for a tiny model
    whose long prompts cost minutes and whose long replies are rarely readable. None: the suite's."""

    max_tokens_per_section: int | None = None
    max_new_tokens: int | None = None


JUDGE_LIMIT_KEYS = [f.name for f in dataclasses.fields(JudgeLimits)]


@dataclass(frozen=True)
class Alias:
    """A named model: where its weights are and how to run it."""

    name: str
    description: str = ""
    hf: str | None = None
    bundled: str | None = None
    model_class: Literal["auto", "causal_lm", "image_text_to_text"] = "auto"
    chat_template: str = "model"  # "model" (the tokenizer's), "plain" (completion prompts) or a Jinja template
    thinking: bool = False  # the chat template understands enable_thinking
    end_tokens: tuple[str, ...] = ()
    trust_remote_code: bool = False
    judge_limits: JudgeLimits | None = None  # caps on its budgets as a judge
    source: str = "packaged"  # where the alias was defined, for error messages


ALIAS_KEYS = [f.name for f in dataclasses.fields(Alias) if f.name not in ("name", "source")]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed --model value. `label` names the model in test ids and reports."""

    text: str
    label: str
    kind: str  # the backend kind (vnllmtest.extensions.BACKENDS): hf, openai, replay or an installed one
    target: str  # hub id, local folder, bundled model name, replay file, server URL, or what the kind reads
    alias: Alias | None = field(default=None, compare=False)
    adapter: str | None = None  # LoRA adapter folder (hf)
    served_name: str | None = None  # the model name a server expects (openai)
    endpoint: str = "chat"  # chat or completions (openai)

    def __str__(self) -> str:
        return self.label


def load_aliases(overrides: list[tuple[str, Mapping[str, Any]]] = ()) -> dict[str, Alias]:
    """The packaged aliases, then each (source, {name: entry}) override in order (later wins)."""
    packaged = yaml.safe_load(resources.files("vnllmtest.backends").joinpath("aliases.yaml").read_text("utf-8"))
    aliases: dict[str, Alias] = {}
    for source, entries in [("packaged aliases.yaml", packaged), *overrides]:
        if not isinstance(entries, Mapping):
            raise ModelError(f"{source}: model aliases must be a mapping of name -> settings")
        for name, entry in entries.items():
            aliases[name] = _alias(source, name, entry)
    return aliases


def aliases_from_file(path: Path) -> tuple[str, Mapping[str, Any]]:
    """An alias override file (YAML, {name: settings}), for load_aliases."""
    try:
        return str(path), yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"{path}: cannot read model aliases ({exc})") from None


def _alias(source: str, name: str, entry: Any) -> Alias:
    if not isinstance(entry, Mapping):
        raise ModelError(f"{source}: alias '{name}' must be a mapping of settings ({', '.join(ALIAS_KEYS)})")
    unknown = sorted(set(entry) - set(ALIAS_KEYS))
    if unknown:
        raise ModelError(f"{source}: alias '{name}': unknown key(s) {', '.join(unknown)}; expected {', '.join(ALIAS_KEYS)}")
    if not (entry.get("hf") or entry.get("bundled")):
        raise ModelError(f"{source}: alias '{name}' needs 'hf' (a hub id or folder) or 'bundled'")
    if entry.get("model_class", "auto") not in ("auto", "causal_lm", "image_text_to_text"):
        raise ModelError(f"{source}: alias '{name}': model_class must be auto, causal_lm or image_text_to_text")
    limits = _judge_limits(f"{source}: alias '{name}': judge_limits", entry.get("judge_limits"))
    return Alias(
        name=name, source=source, **{**entry, "end_tokens": tuple(entry.get("end_tokens", ())), "judge_limits": limits}
    )


def _judge_limits(where: str, entry: Any) -> JudgeLimits | None:
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or not entry or set(entry) - set(JUDGE_LIMIT_KEYS):
        raise ModelError(f"{where} must be a mapping with {' and/or '.join(JUDGE_LIMIT_KEYS)}, got {entry!r}")
    for key, value in entry.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(f"{where}: {key} must be a whole number of at least 1, got {value!r}")
    return JudgeLimits(**entry)


def parse_model_spec(text: str, aliases: dict[str, Alias] | None = None) -> ModelSpec:
    """Resolve an alias, `replay:PATH`, `openai:URL`, `hf:owner/name`, a local folder or a hub id
    `owner/name`, each optionally followed by `+key=value` modifiers (`+adapter=DIR`, `+model=NAME`)."""
    aliases = load_aliases() if aliases is None else aliases
    base, modifiers = _split_modifiers(text)
    spec = _parse_base(text, base, aliases)
    adapter, served, endpoint = modifiers.get("adapter"), modifiers.get("model"), modifiers.get("endpoint")
    if adapter is not None:
        if spec.kind != "hf":
            raise ModelError(f"model '{text}': +adapter= applies to local or hub models, not {spec.kind}")
        folder = Path(adapter).expanduser()
        if not folder.is_dir():
            raise ModelError(f"model '{text}': adapter folder {folder} not found")
        spec = dataclasses.replace(spec, label=f"{spec.label}+{clean_label(folder.resolve().name)}", adapter=str(folder.resolve()))
    if served is not None:
        if spec.kind != "openai":
            raise ModelError(f"model '{text}': +model= names the model an openai: server serves")
        spec = dataclasses.replace(spec, label=clean_label(served.split("/")[-1]), served_name=served)
    if endpoint is not None:
        if spec.kind != "openai" or endpoint not in ("chat", "completions"):
            raise ModelError(f"model '{text}': +endpoint= is chat or completions, for openai: servers")
        spec = dataclasses.replace(spec, endpoint=endpoint)
    return spec


def _split_modifiers(text: str) -> tuple[str, dict[str, str]]:
    parts = text.split("+")
    modifiers: dict[str, str] = {}
    while len(parts) > 1 and _MODIFIER.match(parts[-1]):
        key, value = _MODIFIER.match(parts.pop()).groups()
        if key not in MODIFIERS:
            known = "; ".join(f"+{name}= ({what})" for name, what in MODIFIERS.items())
            raise ModelError(f"model '{text}': unknown modifier '+{key}='; known: {known}")
        modifiers[key] = value
    return "+".join(parts), modifiers


def _parse_base(text: str, base: str, aliases: dict[str, Alias]) -> ModelSpec:
    prefix = _PREFIX.match(base)
    kind = _backend_kind(text, prefix[1]) if prefix else None
    if prefix and kind is not None:
        target = base[prefix.end() :]
        if kind.parse is None:
            return ModelSpec(text, clean_label(target), prefix[1], target)
        return kind.parse(text, target)
    if base in aliases:
        alias = aliases[base]
        return ModelSpec(text, base, "hf", alias.bundled or alias.hf or base, alias)
    path = Path(base).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model '{text}': {path} is a file; give the checkpoint folder")
        return ModelSpec(text, clean_label(path.resolve().name), "hf", str(path.resolve()))
    if _HUB_ID.match(base) and not base.startswith((".", "/", "~")):
        return ModelSpec(text, clean_label(base.split("/")[-1]), "hf", base)
    close = difflib.get_close_matches(base, list(aliases), n=1, cutoff=0.75)
    kinds = _asking_backends(text, BACKENDS.names)
    raise ModelError(
        f"unknown model '{text}'{f' (did you mean {close[0]}?)' if close else ''}: not an alias "
        f"({', '.join(sorted(aliases))}), not an existing folder, not a hub id like owner/name, and not a "
        f"backend kind ({', '.join(f'{name}:…' for name in kinds)})"
    )


def _backend_kind(text: str, name: str) -> BackendKind | None:
    """The backend kind called `name`, or None when there is none (installed kinds are looked up only
    for a value with a prefix, so reading a plain alias never scans the installed packages)."""
    return _asking_backends(text, lambda: BACKENDS.get(name) if name in BACKENDS else None)


def _asking_backends(text: str, ask: Callable[[], Any]) -> Any:
    """`ask()` of the backend registry, its ExtensionError (a broken installed kind) as a ModelError."""
    try:
        return ask()
    except ExtensionError as exc:
        raise ModelError(f"model '{text}': {exc}") from None


def parse_model_specs(texts: list[str], aliases: dict[str, Alias] | None = None) -> list[ModelSpec]:
    """Parse every --model value; labels are made unique by suffixing -2, -3..."""
    aliases = load_aliases() if aliases is None else aliases
    specs: list[ModelSpec] = []
    taken: set[str] = set()
    for text in texts:
        spec = parse_model_spec(text, aliases)
        label, counter = spec.label, 2
        while label in taken:
            label, counter = f"{spec.label}-{counter}", counter + 1
        taken.add(label)
        specs.append(dataclasses.replace(spec, label=label))
    return specs


def clean_label(name: str) -> str:
    """A model label usable in test ids, file names and reports."""
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "model"
