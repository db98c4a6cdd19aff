"""The transformers backend on real models: a tiny random-weight Qwen3 and the bundled Gemma 3 270M."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from support import build_tiny_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from vnllmtest.backends import HFSettings, ModelError, Request, load_backend
from vnllmtest.backends.hf import MIN_SHARED_PREFIX, folder_digest
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.runner import Runner

PROMPTS = [
    "Thủ đô của Việt Nam là",
    "Câu hỏi: Sông nào dài nhất Việt Nam?\nTrả lời:",
    "Hãy viết một câu về mùa thu Hà Nội.",
    "Đáp án:",
    "Phở là món ăn truyền thống của người Việt, thường được ăn vào buổi sáng. Nguyên liệu chính gồm",
]


def _requests(prompts: list[str], max_new_tokens: int = 6) -> list[Request]:
    return [Request("t", str(i), p, ("A", "B", "C", "D"), max_new_tokens) for i, p in enumerate(prompts)]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    backend = load_backend(parse_model_spec(str(tiny_model_dir)), HFSettings(device="cpu"))
    yield backend
    backend.close()


def test_batched_and_unbatched_greedy_generation_agree(tiny):
    requests = _requests(PROMPTS, max_new_tokens=8)
    together = Runner(batch_size=len(requests)).run(tiny, requests, "generate")
    alone = Runner(batch_size=1).run(tiny, requests, "generate")
    assert [p.text for p in together] == [p.text for p in alone]
    assert all(p.new_tokens > 0 for p in together)


# A shared instruction long enough for the backend to run it once for the whole batch.
INSTRUCTION = "Hãy chọn đáp án đúng cho câu hỏi trắc nghiệm sau. Chỉ trả lời bằng một chữ cái (A, B, C, D).\n\n"


def _shared_prefix(backend, requests: list[Request]) -> int:
    return backend._shareable_prefix(backend._token_rows([request.prompt for request in requests]))


@pytest.mark.parametrize("instruction", ["", INSTRUCTION], ids=["own-prompts", "shared-instruction"])
def test_loglikelihood_matches_an_unpadded_forward_pass(tiny, tiny_model_dir, instruction):
    """The option scored highest is the label whose token the model itself ranks highest, also when
    the batch's common prefix is run once and its cache shared."""
    requests = _requests([tiny.format_prompt([{"role": "user", "content": instruction + p}]) for p in PROMPTS])
    assert (_shared_prefix(tiny, requests) >= MIN_SHARED_PREFIX) == bool(instruction)
    scores = tiny.score_choices(requests)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    for request, found in zip(requests, scores):
        ids = tokenizer(request.prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(ids).logits[0, -1].float(), dim=-1)
        expected = {}
        for label in request.labels:
            variants = sorted({tokenizer(t).input_ids[0] for t in (label, f" {label}")})
            expected[label] = torch.logsumexp(logprobs[variants], dim=0).item()
        assert found == pytest.approx(expected, abs=1e-4)
        assert max(found, key=found.get) == max(expected, key=expected.get)


def test_label_tokens_choose_which_spellings_of_a_label_count(tiny, tiny_model_dir):
    """"spaced" scores " A" (as lm-evaluation-harness does), "bare" scores "A", "either" adds both."""
    prompt = tiny.format_prompt([{"role": "user", "content": INSTRUCTION + PROMPTS[1]}])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(tokenizer(prompt, return_tensors="pt").input_ids).logits[0, -1], dim=-1)
    first = {text: tokenizer(text).input_ids[0] for label in "AB" for text in (label, f" {label}")}
    assert len(set(first.values())) == 4  # the spellings are distinct tokens
    scores = {
        spelling: tiny.score_choices([Request("t", "1", prompt, ("A", "B"), label_tokens=spelling)])[0]
        for spelling in ("spaced", "bare", "either")
    }
    for label in "AB":
        spaced, bare = logprobs[first[f" {label}"]].item(), logprobs[first[label]].item()
        assert scores["spaced"][label] == pytest.approx(spaced, abs=1e-4)
        assert scores["bare"][label] == pytest.approx(bare, abs=1e-4)
        assert scores["either"][label] == pytest.approx(math.log(math.exp(spaced) + math.exp(bare)), abs=1e-4)


def test_loglikelihood_is_batch_size_invariant(tiny):
    requests = _requests(PROMPTS)
    one = Runner(batch_size=1).run(tiny, requests, "loglikelihood")
    many = Runner(batch_size=4).run(tiny, requests, "loglikelihood")
    for a, b in zip(one, many):
        assert a.choice_logprobs == pytest.approx(b.choice_logprobs, abs=1e-4)


def test_shared_prefix_leaves_each_row_a_token_and_respects_the_sliding_window(tiny, monkeypatch):
    whole = tiny.format_prompt([{"role": "user", "content": INSTRUCTION + PROMPTS[0]}])
    requests = _requests([whole, whole + " và", whole])
    rows = tiny._token_rows([request.prompt for request in requests])
    assert _shared_prefix(tiny, requests) == len(rows[0]) - 1
    shared = tiny.score_choices(requests)
    assert shared[0] == pytest.approx(shared[2], abs=1e-5)
    monkeypatch.setattr(tiny, "sliding_window", len(rows[1]))  # padding would push the prefix out of the window
    assert _shared_prefix(tiny, requests) == 0
    monkeypatch.setattr(tiny, "prefix_sharing", False)
    assert _shared_prefix(tiny, requests) == 0
    for a, b in zip(shared, tiny.score_choices(requests)):
        assert a == pytest.approx(b, abs=1e-4)


def test_chat_template_is_used_when_the_tokenizer_has_one(tiny, tmp_path):
    chat = tiny.format_prompt([{"role": "system", "content": "Hệ thống"}, {"role": "user", "content": "Xin chào"}])
    assert chat == "<|im_start|>system\nHệ thống<|im_end|>\n<|im_start|>user\nXin chào<|im_end|>\n<|im_start|>assistant\n"
    plain_dir = build_tiny_model(tmp_path / "plain", chat_template=None)
    plain = load_backend(parse_model_spec(str(plain_dir)))
    assert plain.format_prompt([{"role": "system", "content": "Hệ thống"}, {"role": "user", "content": "Xin chào"}]) == (
        "Hệ thống\n\nXin chào"
    )


def test_fingerprint_follows_content_not_location(tiny_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    assert folder_digest(copy) == folder_digest(tiny_model_dir)
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert folder_digest(other) != folder_digest(tiny_model_dir)


def test_missing_folder_and_unreachable_hub_id_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="unknown model"):
        parse_model_spec(str(tmp_path / "no-such-checkpoint"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelError, match="hub id 'vnllmtest-nobody/not-a-model' could not be fetched"):
        load_backend(parse_model_spec("vnllmtest-nobody/not-a-model"))


def test_corrupted_weights_are_a_model_error(tiny_model_dir, tmp_path):
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    backend = load_backend(parse_model_spec(str(broken)))  # weights load on first use
    with pytest.raises(ModelError, match="cannot load"):
        backend.generate(_requests(PROMPTS[:1]))
    with pytest.raises(ModelError, match="cannot load"):  # remembered, not retried
        backend.score_choices(_requests(PROMPTS[:1]))


@pytest.fixture(scope="module")
def gemma():
    backend = load_backend(parse_model_spec("gemma3-270m"))
    yield backend
    backend.close()


def test_bundled_gemma_batches_like_single_prompts(gemma):
    prompts = [gemma.format_prompt([{"role": "user", "content": p}]) for p in PROMPTS[:4]]
    assert prompts[0] == PROMPTS[0]  # a base model: plain completion prompts (the tokenizer adds BOS)
    requests = _requests(prompts, max_new_tokens=6)
    together = Runner(batch_size=4).run(gemma, requests, "generate")
    alone = Runner(batch_size=1).run(gemma, requests, "generate")
    assert [p.text for p in together] == [p.text for p in alone]
    choices_together = Runner(batch_size=4).run(gemma, requests, "loglikelihood")
    choices_alone = Runner(batch_size=1).run(gemma, requests, "loglikelihood")
    for a, b in zip(choices_together, choices_alone):
        assert a.choice_logprobs == pytest.approx(b.choice_logprobs, abs=1e-3)


def test_bundled_gemma_scores_a_shared_prefix_like_whole_prompts(gemma, monkeypatch):
    """Gemma 3 mixes sliding-window and global attention layers; both hold the shared prefix."""
    requests = _requests([INSTRUCTION + prompt for prompt in PROMPTS])
    assert _shared_prefix(gemma, requests) >= MIN_SHARED_PREFIX
    shared = gemma.score_choices(requests)
    monkeypatch.setattr(gemma, "prefix_sharing", False)
    for a, b in zip(shared, gemma.score_choices(requests)):
        assert a == pytest.approx(b, abs=1e-3)
        assert max(a, key=a.get) == max(b, key=b.get)


def test_stop_strings_end_generation_and_are_cut(tiny):
    [free] = tiny.generate([Request("t", "1", PROMPTS[0], max_new_tokens=12)])
    assert free.finish_reason == "length" and len(free.text) > 6
    stop = free.text[4:6]
    [stopped] = tiny.generate([Request("t", "1", PROMPTS[0], max_new_tokens=12, stop=(stop,))])
    assert stopped.text == free.text[: free.text.find(stop)]
    assert stopped.finish_reason == "stop" and stopped.new_tokens < free.new_tokens
