"""Evaluating a suite group with a real (tiny) model: both scoring modes, token budgets, prompt constants."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnllmtest.backends import HFSettings, load_backend
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.cache import PredictionCache
from vnllmtest.evaluation import evaluate
from vnllmtest.loaders import DataOptions, load_data
from vnllmtest.metrics import extract_choice
from vnllmtest.runner import Runner
from vnllmtest.suite import load_suite

from support import REPO


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    backend = load_backend(parse_model_spec(str(tiny_model_dir)), HFSettings(device="cpu"))
    yield backend
    backend.close()


def edited_suite(tmp_path: Path, name: str, *replacements: tuple[str, str]) -> Path:
    """A copy of a bundled suite, edited as a user would, reading the bundled sample."""
    text = (REPO / "suites" / f"{name}.yaml").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("sample: data/", f"sample: {REPO / 'suites' / 'data'}/")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_suite(path: Path, backend, runner: Runner, limit: int = 6):
    suite = load_suite(path)
    data = load_data(suite, DataOptions(mode="sample", limit=limit, allow_outside=True))  # edited copies read the bundled sample
    return evaluate(backend, suite, data, data.entries, runner, max_new_tokens_cap=4)


def test_both_scoring_modes_give_accuracy_per_mode_and_their_agreement(tiny, tmp_path):
    runner = Runner(PredictionCache(tmp_path / "cache"), batch_size=4)
    results = run_suite(REPO / "suites" / "vmlu.yaml", tiny, runner)
    for result in results.values():
        assert result.mode == "loglikelihood+generate"
        assert set(result.metrics) == {"accuracy", "accuracy_loglik", "mode_agreement"}
        assert result.metrics["accuracy"] == float(result.answer == result.references[0])
        assert result.metrics["accuracy"] == float(extract_choice(result.output, list(result.choice_logprobs)) == result.references[0])
        assert result.metrics["accuracy_loglik"] == float(result.loglik_answer == result.references[0])
        best = max(result.choice_logprobs, key=result.choice_logprobs.get)
        assert result.loglik_answer == best
        assert result.metrics["mode_agreement"] == float(result.answer is not None and result.loglik_answer == result.answer)
        assert result.choice_logprobs and result.output is not None
    again = run_suite(REPO / "suites" / "vmlu.yaml", tiny, runner)
    assert all(result.cached for result in again.values())
    assert {k: r.metrics for k, r in again.items()} == {k: r.metrics for k, r in results.items()}


def test_vims_documents_mode_fits_the_token_budget_and_records_the_cut(tiny, tmp_path):
    path = edited_suite(
        tmp_path,
        "vims",
        ("options: {input: s3}", "options: {input: documents}"),
        ("max_tokens: 3072", "max_tokens: 300"),
    )
    results = run_suite(path, tiny, Runner(batch_size=4), limit=3)
    for result in results.values():
        assert result.status != "error", result.message
        assert "Bài 1:" in result.prompt
        assert tiny.prompt_length(result.prompt) <= 300
        cut = result.truncation
        assert cut["field"] == "passages" and cut["policy"] == "proportional"
        assert cut["tokens_before"] > 300 >= cut["tokens_after"] and 0 < cut["words_kept"] < cut["words_total"]


def test_vims_s3_mode_prompts_with_the_selected_sentences(tiny):
    results = run_suite(REPO / "suites" / "vims.yaml", tiny, Runner(batch_size=4), limit=2)
    for result in results.values():
        assert result.truncation is None
        assert "các câu quan trọng được chọn" in result.prompt and "Bài 1:" not in result.prompt


def test_the_declared_abstention_phrase_is_named_in_the_prompt(tiny, tmp_path):
    path = edited_suite(tmp_path, "visquad2", ("    - không có câu trả lời\n", "    - không rõ\n"))
    results = run_suite(path, tiny, Runner(batch_size=4), limit=2)
    assert all('hãy trả lời đúng cụm "không rõ"' in result.prompt for result in results.values())
