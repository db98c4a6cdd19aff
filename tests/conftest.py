"""Shared fixtures for the test suite: a test project, replayed predictions for it, and a tiny real model."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
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

from support import build_tiny_model, make_project, write_replay
from vnllmtest.backends.bundled import HOME_ENV, home

# pytester points HOME at a temporary folder; keep using the one converted copy of the bundled model.
os.environ.setdefault(HOME_ENV, str(home()))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "project(**contents): what the `project` fixture writes (the arguments of support.make_project)"
    )


@pytest.fixture
def project(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester in a project built by `support.make_project` from the closest `project` mark (the test's,
    else its module's `pytestmark`)."""
    mark = request.node.get_closest_marker("project")
    assert mark is not None, "the project fixture needs a @pytest.mark.project(...) on the test or its module"
    make_project(pytester.path, **mark.kwargs)
    return pytester


@pytest.fixture
def replay(pytester: pytest.Pytester) -> Callable[..., str]:
    """The tiny backend: replay(answers, name="preds", **fields) writes a replay file into the test project
    (see `support.write_replay`) and gives its `--model` (or `--judge`) spec."""
    return functools.partial(write_replay, pytester.path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random-weight Qwen3 checkpoint folder (real from_pretrained path)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))
