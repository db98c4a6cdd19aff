"""Where and how a local model's weights live: device, dtype, quantisation and memory caps.

Defaults follow the hardware: on a CUDA GPU with less than 24 GB (a 16 GB T4) weights load in 4-bit
nf4 with double quantisation; compute is bf16 where the GPU supports it and fp16 otherwise (T4).
Planning imports torch only where a GPU may be present or a dtype is unusual, so that a run answered
from the cache on a machine without one never imports it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnllmtest.backends.base import QUANT_CHOICES, HFSettings, ModelError

if TYPE_CHECKING:
    import torch

SMALL_GPU_BYTES = 24 * 1024**3
COMMON_DTYPES = ("float32", "float16", "bfloat16")  # accepted without asking torch
# Device files of the accelerators torch.cuda can drive (NVIDIA, AMD ROCm, WSL's GPU paravirtualisation).
_GPU_DEVICE_FILES = ("nvidiactl", "nvidia0", "kfd", "dxg")


@dataclass(frozen=True)
class Placement:
    device: str
    dtype_name: str  # a torch dtype's name: "float32", "bfloat16"...
    quant: str  # "none", "4bit" or "8bit"
    max_memory: dict[int | str, str] | None = None

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype_name)

    @property
    def summary(self) -> str:
        """The part of the model fingerprint that placement decides."""
        return f"dtype={self.dtype_name}|quant={self.quant}"

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `from_pretrained`; without a device map the caller moves the model."""
        kwargs: dict[str, Any] = {"dtype": self.dtype}
        if self.device.startswith("cuda"):
            kwargs["attn_implementation"] = "sdpa"
        if self.quant != "none":
            from transformers import BitsAndBytesConfig

            if self.quant == "4bit":
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=self.dtype,
                )
            else:
                kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        if self.max_memory is not None:
            kwargs.update(device_map="auto", max_memory=self.max_memory)
        elif self.quant != "none":
            kwargs["device_map"] = {"": self.device}
        return kwargs

    @property
    def placed_by_loader(self) -> bool:
        return self.max_memory is not None or self.quant != "none"


def plan(settings: HFSettings) -> Placement:
    device = pick_device(settings.device)
    quant = _pick_quant(settings.quant, device)
    return Placement(device, _pick_dtype(settings.dtype, device), quant, parse_max_memory(settings.max_memory))


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    if not _may_have_gpu():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _may_have_gpu() -> bool:
    """False where torch.cuda surely finds no device (macOS; Linux without an accelerator's device files)."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return any((Path("/dev") / name).exists() for name in _GPU_DEVICE_FILES)
    return True


def describe_device(device: str) -> str:
    """The device with the accelerator's name, e.g. "cuda (Tesla T4)"."""
    if not device.startswith("cuda"):
        return device
    import torch

    if torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def _pick_dtype(requested: str, device: str) -> str:
    """The dtype's name (an alias such as "float" becomes "float32")."""
    if requested in COMMON_DTYPES or (requested == "auto" and not device.startswith("cuda")):
        return "float32" if requested == "auto" else requested
    import torch

    if requested != "auto":
        found = getattr(torch, requested, None)
        if not isinstance(found, torch.dtype):
            raise ModelError(f"unknown dtype '{requested}' (use float32, float16 or bfloat16)")
        return str(found).removeprefix("torch.")
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def _pick_quant(requested: str, device: str) -> str:
    if requested not in QUANT_CHOICES:
        raise ModelError(f"unknown quantisation '{requested}' (use {', '.join(QUANT_CHOICES)})")
    if requested != "auto":
        return requested
    if not device.startswith("cuda"):
        return "none"
    import torch

    if not torch.cuda.is_available():
        return "none"
    return "4bit" if torch.cuda.get_device_properties(torch.device(device)).total_memory < SMALL_GPU_BYTES else "none"


def parse_max_memory(text: str | None) -> dict[int | str, str] | None:
    """`0=14GiB,cpu=30GiB` -> {0: "14GiB", "cpu": "30GiB"}."""
    if not text:
        return None
    caps: dict[int | str, str] = {}
    for part in text.split(","):
        device, equals, amount = part.strip().partition("=")
        if not equals or not device or not amount:
            raise ModelError(f"--max-memory '{text}': expected DEVICE=AMOUNT pairs like 0=14GiB,cpu=30GiB")
        caps[int(device) if device.isdigit() else device] = amount
    return caps
