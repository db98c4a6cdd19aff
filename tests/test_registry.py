"""Model specs and the alias registry: what a user types after --model, and where aliases come from."""

from __future__ import annotations

import json
import re

import pytest

from vnllmtest.backends import ModelError
from vnllmtest.backends.registry import aliases_from_file, load_aliases, parse_model_spec, parse_model_specs


def test_packaged_aliases_describe_how_each_model_runs():
    aliases = load_aliases()
    assert {"gemma3-270m", "smollm2-135m", "qwen3-8b", "qwen3.5-9b", "unicorn-vl-r3", "seallms-v3-7b"} <= set(aliases)
    assert aliases["qwen3.5-9b"].model_class == "image_text_to_text" and aliases["qwen3.5-9b"].thinking
    assert aliases["unicorn-vl-r3"].hf == "unicorn-team/Unicorn-VL-R3"
    assert aliases["gemma3-270m"].chat_template == "plain"
    assert not any(alias.trust_remote_code for alias in aliases.values())


def test_specs_with_modifiers(tmp_path):
    adapter = tmp_path / "runs" / "step-1000"
    adapter.mkdir(parents=True)
    tuned = parse_model_spec(f"qwen3-8b+adapter={adapter}")
    assert (tuned.kind, tuned.target, tuned.label, tuned.adapter) == ("hf", "Qwen/Qwen3-8B", "qwen3-8b+step-1000", str(adapter))
    served = parse_model_spec("openai:http://127.0.0.1:8000/v1+model=Qwen/Qwen3-8B")
    assert (served.kind, served.target, served.served_name, served.label) == (
        "openai", "http://127.0.0.1:8000/v1", "Qwen/Qwen3-8B", "qwen3-8b"
    )
    assert parse_model_spec("openai:http://127.0.0.1:8000/v1").label == "127.0.0.1-8000-v1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("qwen3-8b+lora=x", "unknown modifier '+lora='; known: +adapter="),
        ("replay:p.jsonl+adapter=.", "+adapter= applies to local or hub models, not replay"),
        ("qwen3-8b+model=x", "+model= names the model an openai: server serves"),
        ("openai:localhost:8000", "expected openai:http(s)://HOST[:PORT]/v1"),
    ],
)
def test_bad_specs_say_what_is_wrong(text, message, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "1", "prediction": "A"}\n')
    with pytest.raises(ModelError, match=re.escape(message)):
        parse_model_spec(text.replace("p.jsonl", str(tmp_path / "p.jsonl")))


def test_overrides_add_and_replace_aliases(tmp_path):
    path = tmp_path / "aliases.yaml"
    path.write_text("qwen3-8b:\n  hf: ./checkpoints/qwen3-8b-mirror\nmy-model:\n  hf: org/my-model\n  thinking: true\n")
    aliases = load_aliases([aliases_from_file(path)])
    assert aliases["qwen3-8b"].hf == "./checkpoints/qwen3-8b-mirror" and aliases["qwen3-8b"].source == str(path)
    assert parse_model_specs(["my-model"], aliases)[0].target == "org/my-model"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"hf": "a/b", "trust_remote": True}, "alias 'x': unknown key\\(s\\) trust_remote; expected description, hf"),
        ({"description": "no weights"}, "alias 'x' needs 'hf'"),
        ({"hf": "a/b", "model_class": "seq2seq"}, "alias 'x': model_class must be auto, causal_lm or image_text_to_text"),
    ],
)
def test_bad_alias_entries_name_their_source(entry, message):
    with pytest.raises(ModelError, match=f"pyproject.toml: {message}"):
        load_aliases([("pyproject.toml", {"x": entry})])


def test_pyproject_and_file_aliases_reach_the_plugin(pytester, tiny_model_dir):
    pytester.makepyprojecttoml(f'[tool.vnllmtest.aliases.tiny]\nhf = "{tiny_model_dir}"\n')
    pytester.makefile(".yaml", extra=f"tinier:\n  hf: {tiny_model_dir}\n  chat_template: plain\n")
    pytester.makepyfile(
        test_alias="""
        def test_models(vnllm_model):
            assert vnllm_model.label in ("tiny", "tinier")
            assert (vnllm_model.chat_template is None) == (vnllm_model.label == "tinier")
        """
    )
    result = pytester.runpytest("--model", "tiny", "--model", "tinier", "--aliases", "extra.yaml")
    result.assert_outcomes(passed=2)
    bad = pytester.runpytest("--model", "tiny", "--aliases", "missing.yaml")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*missing.yaml: cannot read model aliases*"])


def test_replay_label_comes_from_the_file(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"id": "1", "prediction": "A", "model": "Qwen3-8B"}) + "\n")
    assert parse_model_spec(f"replay:{path}").label == "qwen3-8b"


@pytest.mark.parametrize(
    "url", ["http://user:sk-SECRET123@127.0.0.1:8000/v1", "https://sk-SECRET123@api.example.vn/v1", "http://a:b@h/v1"]
)
def test_credentials_in_a_server_url_are_refused_without_repeating_them(url):
    with pytest.raises(ModelError, match="holds credentials") as caught:
        parse_model_spec(f"openai:{url}")
    assert "SECRET" not in str(caught.value) and url not in str(caught.value)
    assert "--api-key-env" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [("qwen3-8bb", "qwen3-8b"), ("gemma3-270", "gemma3-270m"), ("Qwen3.5-9b", "qwen3.5-9b"), ("xyz", None)],
)
def test_a_mistyped_alias_gets_the_nearest_name(text, suggestion):
    with pytest.raises(ModelError) as caught:
        parse_model_spec(text)
    hint = f"unknown model '{text}' (did you mean {suggestion}?): not an alias"
    assert (hint in str(caught.value)) == (suggestion is not None)
    assert "did you mean" not in str(caught.value) or suggestion is not None
