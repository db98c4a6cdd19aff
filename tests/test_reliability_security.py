"""Untrusted checkpoints and secrets: a checkpoint's own Python code runs only when the command line or the
alias allows it, pickle weights are never unpickled, and a planted hub token reaches no output."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from support import SHORT_QA, short_questions

from vnllmtest.backends import HFSettings, ModelError, Request, load_backend
from vnllmtest.backends.registry import parse_model_spec

RECORDS = short_questions("q", 2)
REMOTE_CONFIG = """from transformers import Qwen3Config

with open({marker!r}, "a") as marker:
    marker.write("configuration code ran\\n")


class RemoteConfig(Qwen3Config):
    model_type = "vnllmtest_remote_lm"
"""
REMOTE_MODEL = """from transformers import Qwen3ForCausalLM

from .configuration_remote import RemoteConfig

with open({marker!r}, "a") as marker:
    marker.write("modeling code ran\\n")


class RemoteLM(Qwen3ForCausalLM):
    config_class = RemoteConfig
"""


pytestmark = pytest.mark.project(suites={"qa": SHORT_QA}, records={"qa.jsonl": RECORDS})


def checkpoint_with_code(folder: Path, tiny_model_dir: Path, marker: Path) -> Path:
    """The tiny model's weights behind a config whose classes live in the checkpoint's own Python files."""
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, folder / name)
    config = json.loads((tiny_model_dir / "config.json").read_text("utf-8"))
    config.update(
        model_type="vnllmtest_remote_lm",
        architectures=["RemoteLM"],
        auto_map={
            "AutoConfig": "configuration_remote.RemoteConfig",
            "AutoModelForCausalLM": "modeling_remote.RemoteLM",
        },
    )
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "configuration_remote.py").write_text(REMOTE_CONFIG.format(marker=str(marker)), encoding="utf-8")
    (folder / "modeling_remote.py").write_text(REMOTE_MODEL.format(marker=str(marker)), encoding="utf-8")
    return folder


def test_a_checkpoints_own_code_runs_only_when_the_command_line_or_its_alias_allows_it(project, tiny_model_dir):
    marker = project.path / "remote-code-ran"
    folder = checkpoint_with_code(project.path / "vnllmtest-remote-lm", tiny_model_dir, marker)
    refused = project.runpytest("suites", f"--model={folder}")
    assert refused.ret == pytest.ExitCode.TESTS_FAILED and refused.parseoutcomes()["errors"] == len(RECORDS)
    refused.stdout.fnmatch_lines(["*ships its own Python code, which would run on this machine with your permissions*"])
    assert not marker.exists()

    allowed = project.runpytest("suites", f"--model={folder}", "--trust-remote-code")
    assert allowed.ret == 0 and allowed.parseoutcomes()["missed"] == len(RECORDS)
    ran = marker.read_text("utf-8").splitlines()
    assert {"configuration code ran", "modeling code ran"} == set(ran)

    (project.path / "aliases.yaml").write_text(f"remote: {{hf: '{folder}', trust_remote_code: true}}\n", "utf-8")
    by_alias = project.runpytest("suites", "--model=remote", "--aliases", "aliases.yaml")
    assert by_alias.ret == 0 and by_alias.parseoutcomes()["missed"] == len(RECORDS)
    assert len(marker.read_text("utf-8").splitlines()) > len(ran)


class RunsCode:
    """Unpickling this runs a shell command: what a hostile pytorch_model.bin can hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_safetensors_weights_are_preferred_and_pickle_weights_are_never_unpickled(tiny_model_dir, tmp_path):
    marker = tmp_path / "pickle-ran"
    request = Request("t", "1", "Thủ đô của Việt Nam là", max_new_tokens=4)
    expected = load_backend(parse_model_spec(str(tiny_model_dir)), HFSettings(device="cpu")).generate([request])
    both = shutil.copytree(tiny_model_dir, tmp_path / "both")
    (both / "pytorch_model.bin").write_bytes(pickle.dumps({"model.embed_tokens.weight": RunsCode(marker)}, protocol=2))
    assert load_backend(parse_model_spec(str(both)), HFSettings(device="cpu")).generate([request]) == expected
    pickle_only = shutil.copytree(both, tmp_path / "pickle-only")
    (pickle_only / "model.safetensors").unlink()
    backend = load_backend(parse_model_spec(str(pickle_only)), HFSettings(device="cpu"))
    with pytest.raises(ModelError, match="cannot load .*Weights only load failed"):
        backend.generate([request])
    assert not marker.exists()


def test_a_planted_hub_token_reaches_no_report_cache_log_or_failure_message(project, tiny_model_dir, monkeypatch):
    token = "hf_vnllmtestPLANTEDtoken0123456789"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("HF_HOME", str(project.path / "hf-home"))
    models = [f"--model={tiny_model_dir}", "--model=vnllmtest-nobody/not-a-model"]
    result = project.runpytest("suites", *models, "--junitxml=junit.xml", "-rA")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*hub id 'vnllmtest-nobody/not-a-model' could not be fetched*"])
    written = [path for path in project.path.rglob("*") if path.is_file()]
    assert {"predictions.sqlite", "items.jsonl", "report.html", "junit.xml"} <= {path.name for path in written}
    assert token not in result.stdout.str() + result.stderr.str()
    assert not [path for path in written if token.encode() in path.read_bytes()]
