"""Content digests of checkpoint folders: the whole folder, for the model fingerprint, and the files that
shape its prompts, for the prompt identity. Plain file reading: neither torch nor transformers."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

_SAMPLED_BYTES = 1 << 20
_WHOLE_PROMPT_FILE_BYTES = 256 << 20  # tokenizer files are read whole up to this size (the largest are ~35 MB)
# What renders chat templates and counts tokens: a new release of any of them may change a prompt or a budget cut.
_RENDERERS = ("transformers", "tokenizers", "jinja2", "sentencepiece")
# Files that never shape a prompt (weights); every other file of the folder is in `prompt_identity`.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt", ".onnx")


def prompt_identity(folder: Path, template_choice: str, trust_remote_code: bool) -> str:
    """A digest of everything that turns chat messages into this model's prompt text and counts its tokens:
    every file of the folder but the weights (tokenizer files, special tokens, chat templates, config),
    the alias's chat template choice, whether the folder's own code may run, and the installed releases of
    what renders and counts (`_RENDERERS`). Computed without transformers (nor importing any of them), so
    that cached prompts are found without the tokenizer."""
    digest = hashlib.sha256()
    header: dict[str, Any] = {name: _installed(name) for name in _RENDERERS}
    header.update(chat_template=template_choice, trust_remote_code=trust_remote_code)
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES)):
        _add_file(digest, folder, path, _WHOLE_PROMPT_FILE_BYTES)
    return digest.hexdigest()


def _installed(package: str) -> str:
    """The installed release of `package` ("none" when it is not installed), read without importing it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def folder_digest(folder: Path) -> str:
    """A content digest of a checkpoint folder: small files whole, weight files by size plus
    their first and last MiB (fast on multi-GB checkpoints, and stable when a folder is copied)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _add_file(digest, folder, path, 2 * _SAMPLED_BYTES)
    return digest.hexdigest()


def _add_file(digest: Any, folder: Path, path: Path, whole_up_to: int) -> None:
    """Add a file's name and size to `digest`, and its content: whole up to `whole_up_to` bytes, else its
    first and last MiB."""
    size = path.stat().st_size
    digest.update(f"{path.relative_to(folder)}\x00{size}\x00".encode())
    with path.open("rb") as handle:
        if size <= whole_up_to:
            digest.update(handle.read())
        else:
            digest.update(handle.read(_SAMPLED_BYTES))
            handle.seek(-_SAMPLED_BYTES, 2)
            digest.update(handle.read())
