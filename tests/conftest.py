"""Shared fixtures for the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No network in tests: the hub clients read these once, when first imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# pytester's in-process runs forget the modules first imported inside them, and torch (operator
# libraries) and datasets (pyarrow extension types) register things at import that cannot happen
# twice: so they load here, once.
import datasets  # noqa: E402, F401
import transformers.modeling_utils  # noqa: E402, F401

from support import build_tiny_model
from vnllmtest.backends.bundled import HOME_ENV, home

# pytester points HOME at a temporary folder; keep using the one converted copy of the bundled model.
os.environ.setdefault(HOME_ENV, str(home()))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random-weight Qwen3 checkpoint folder (real from_pretrained path)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))
