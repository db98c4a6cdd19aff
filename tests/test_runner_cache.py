"""The runner and the prediction cache, on the tiny real model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vnllmtest.backends import HFSettings, Request, load_backend
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.cache import PredictionCache, cache_key
from vnllmtest.runner import Runner

PROMPTS = ["Hà Nội là", "Sài Gòn là", "Huế có", "Đà Nẵng nằm ở", "Cần Thơ là thành phố"]


def requests(max_new_tokens: int = 5) -> list[Request]:
    return [Request("demo", f"r{i}", p, ("A", "B"), max_new_tokens) for i, p in enumerate(PROMPTS)]


@pytest.fixture
def tiny(tiny_model_dir):
    backend = load_backend(parse_model_spec(str(tiny_model_dir)), HFSettings(device="cpu"))
    yield backend
    backend.close()


def count_batches(backend, monkeypatch) -> list[int]:
    """Record the size of every batch the real backend computes."""
    sizes: list[int] = []
    real = backend.generate

    def counting(batch):
        sizes.append(len(batch))
        return real(batch)

    monkeypatch.setattr(backend, "generate", counting)
    return sizes


def test_second_run_is_answered_from_the_cache_without_loading_the_model(tiny_model_dir, tmp_path, monkeypatch):
    first = load_backend(parse_model_spec(str(tiny_model_dir)))
    computed = Runner(PredictionCache(tmp_path), batch_size=2).run(first, requests(), "generate")
    assert not any(p.cached for p in computed)
    second = load_backend(parse_model_spec(str(tiny_model_dir)))
    sizes = count_batches(second, monkeypatch)
    again = Runner(PredictionCache(tmp_path), batch_size=2).run(second, requests(), "generate")
    assert sizes == [] and second._model is None
    assert [p.text for p in again] == [p.text for p in computed] and all(p.cached for p in again)
    assert [p.cache_key for p in again] == [p.cache_key for p in computed]


def test_only_missing_items_are_computed(tiny, tmp_path, monkeypatch):
    cache = PredictionCache(tmp_path)
    Runner(cache, batch_size=8).run(tiny, requests()[:2], "generate")
    sizes = count_batches(tiny, monkeypatch)
    results = Runner(cache, batch_size=8).run(tiny, requests(), "generate")
    assert sizes == [3]
    assert [p.cached for p in results] == [True, True, False, False, False]


def test_batches_are_length_sorted_longest_first(tiny, monkeypatch):
    seen: list[list[str]] = []
    real = tiny.generate
    monkeypatch.setattr(tiny, "generate", lambda batch: seen.append([r.prompt for r in batch]) or real(batch))
    Runner(batch_size=2).run(tiny, requests(), "generate")
    lengths = [tiny.prompt_length(p) for batch in seen for p in batch]
    assert lengths == sorted(lengths, reverse=True)


def test_cache_key_covers_fingerprint_prompt_mode_and_parameters():
    base = cache_key("model-a", "generate", prompt="Xin chào", max_new_tokens=5, stop=[])
    assert base == cache_key("model-a", "generate", stop=[], max_new_tokens=5, prompt="Xin chào")
    assert len({
        base,
        cache_key("model-b", "generate", prompt="Xin chào", max_new_tokens=5, stop=[]),
        cache_key("model-a", "generate", prompt="Xin chao", max_new_tokens=5, stop=[]),
        cache_key("model-a", "generate", prompt="Xin chào", max_new_tokens=6, stop=[]),
        cache_key("model-a", "loglikelihood", prompt="Xin chào", max_new_tokens=5, stop=[]),
        cache_key("model-a", "generate", source="Xin chào", max_new_tokens=5, stop=[]),
    }) == 6


def test_label_spellings_are_cached_apart(tiny, tmp_path):
    """Scores under one scoring.label_tokens never answer for another; "either" keeps the keys it had."""
    cache = PredictionCache(tmp_path)
    either = Runner(cache).run(tiny, requests(), "loglikelihood")
    spaced = Runner(cache).run(tiny, [replace(r, label_tokens="spaced") for r in requests()], "loglikelihood")
    assert not any(p.cached for p in spaced)
    assert all(a.choice_logprobs != b.choice_logprobs for a, b in zip(either, spaced))
    assert either[0].cache_key == cache_key(tiny.fingerprint, "loglikelihood", prompt=PROMPTS[0], labels=["A", "B"])
    again = Runner(cache).run(tiny, [replace(r, label_tokens="spaced") for r in requests()], "loglikelihood")
    assert all(p.cached for p in again) and [p.choice_logprobs for p in again] == [p.choice_logprobs for p in spaced]


def test_a_failing_batch_errors_its_items_and_is_not_cached(tiny, tmp_path, monkeypatch):
    real = tiny.generate

    def failing_on_hue(batch):
        if any(r.prompt == "Huế có" for r in batch):
            raise RuntimeError("CUDA error: device-side assert")
        return real(batch)

    monkeypatch.setattr(tiny, "generate", failing_on_hue)
    cache = PredictionCache(tmp_path)
    results = Runner(cache, batch_size=1).run(tiny, requests(), "generate")
    errors = [p for p in results if p.error]
    assert len(errors) == 1 and "RuntimeError: CUDA error" in errors[0].error
    monkeypatch.setattr(tiny, "generate", real)
    again = Runner(cache, batch_size=1).run(tiny, requests(), "generate")
    assert [p.cached for p in again] == [True, True, False, True, True] and not any(p.error for p in again)


def test_loglikelihood_never_turns_into_generation_for_backends_without_scores(tmp_path):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"id": "r0", "prediction": "Đáp án: B"}\n', encoding="utf-8")
    replay = load_backend(parse_model_spec(f"replay:{predictions}"))
    [result] = Runner().run(replay, requests()[:1], "loglikelihood")
    assert (result.mode, result.text, result.choice_logprobs, result.finish_reason) == ("loglikelihood", "", None, "no_logprobs")
    assert result.error is None and result.cache_key is None
