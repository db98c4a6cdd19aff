"""Shared fixtures for the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import transformers.modeling_utils  # noqa: F401  (see below)

from support import build_tiny_model
from vnllmtest.backends.bundled import HOME_ENV, home

# pytester's in-process runs forget the modules first imported inside them, and torch registers its
# operator libraries at import, which cannot happen twice: so the model-loading modules load here, once.
# pytester points HOME at a temporary folder; keep using the one converted copy of the bundled model.
os.environ.setdefault(HOME_ENV, str(home()))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random-weight Qwen3 checkpoint folder (real from_pretrained path)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))
