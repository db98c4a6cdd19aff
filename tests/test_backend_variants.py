"""Real deployments on real (tiny) checkpoints: 4-bit bitsandbytes, LoRA adapters, vision-language
models run text-only, trust_remote_code refusal, thinking blocks, out-of-memory back-off."""

from __future__ import annotations

import json

import pytest
import torch

from vnllmtest.backends import HFSettings, ModelError, Request, load_backend
from vnllmtest.backends.placement import parse_max_memory, plan
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.runner import Runner
from vnllmtest.thinking import split_thinking

from support import build_lora_adapter, build_tiny_vision_language_model

PROMPTS = ["Thủ đô của Việt Nam là", "Câu hỏi: Sông nào dài nhất?\nTrả lời:", "Phở là món ăn", "Đáp án:"]
CPU = HFSettings(device="cpu")


def requests(prompts=PROMPTS, max_new_tokens=5) -> list[Request]:
    return [Request("t", str(i), p, ("A", "B", "C", "D"), max_new_tokens) for i, p in enumerate(prompts)]


def texts(backend, batch_size=4) -> list[str]:
    return [p.text for p in Runner(batch_size=batch_size).run(backend, requests(), "generate")]


def test_four_bit_nf4_loads_through_bitsandbytes_and_answers(tiny_model_dir):
    settings = HFSettings(device="cpu", quant="4bit", dtype="bfloat16")
    backend = load_backend(parse_model_spec(str(tiny_model_dir)), settings)
    assert backend.fingerprint.endswith("|dtype=bfloat16|quant=4bit")
    outputs = texts(backend)
    import bitsandbytes

    # Public attributes only. bitsandbytes' quant_state is its own: from 0.49, on a CPU with AVX512-BF16, the first
    # forward pass repacks the weights for its fused kernel and folds the nested (double-quantised) constants back.
    layer = backend.model.model.layers[0].self_attn.q_proj
    weight = layer.weight
    assert isinstance(layer, bitsandbytes.nn.Linear4bit) and isinstance(weight, bitsandbytes.nn.Params4bit)
    assert weight.quant_type == "nf4" and weight.compress_statistics  # double quantisation as we ask for it
    assert backend.model.config.quantization_config.bnb_4bit_use_double_quant
    assert weight.dtype == torch.uint8 and weight.numel() * 2 == layer.in_features * layer.out_features  # 4 bits each
    assert layer.compute_dtype == torch.bfloat16  # the --dtype we configure is the compute dtype
    assert len(outputs) == 4 and all(isinstance(text, str) for text in outputs)
    scores = backend.score_choices(requests()[:2])
    assert all(set(s) == {"A", "B", "C", "D"} and all(v <= 0 for v in s.values()) for s in scores)


def test_placement_defaults_follow_the_device():
    cpu = plan(HFSettings(device="cpu"))
    assert (cpu.quant, cpu.dtype, cpu.placed_by_loader) == ("none", torch.float32, False)
    assert plan(HFSettings(device="cpu", quant="8bit")).load_kwargs()["quantization_config"].load_in_8bit
    assert parse_max_memory("0=14GiB, cpu=30GiB") == {0: "14GiB", "cpu": "30GiB"}
    capped = plan(HFSettings(device="cpu", max_memory="cpu=2GiB")).load_kwargs()
    assert capped["device_map"] == "auto" and capped["max_memory"] == {"cpu": "2GiB"}
    with pytest.raises(ModelError, match="expected DEVICE=AMOUNT"):
        parse_max_memory("14GiB")
    with pytest.raises(ModelError, match="unknown quantisation '3bit'"):
        plan(HFSettings(quant="3bit"))


def test_lora_adapter_changes_outputs_label_and_fingerprint(tiny_model_dir, tmp_path):
    adapter = build_lora_adapter(tmp_path / "step-1000", tiny_model_dir)
    base = load_backend(parse_model_spec(str(tiny_model_dir)), CPU)
    tuned = load_backend(parse_model_spec(f"{tiny_model_dir}+adapter={adapter}"), CPU)
    assert tuned.label == f"{base.label}+step-1000"
    assert tuned.fingerprint.startswith(base.fingerprint + "|adapter=folder:")
    assert type(tuned.model).__name__ == "PeftModel"
    assert base.score_choices(requests()[:1]) != tuned.score_choices(requests()[:1])
    assert texts(tuned, batch_size=4) == texts(tuned, batch_size=1)


def test_missing_adapter_folder_is_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(ModelError, match="adapter folder .*nowhere not found"):
        parse_model_spec(f"{tiny_model_dir}+adapter={tmp_path / 'nowhere'}")


def test_vision_language_checkpoint_runs_text_only(tiny_model_dir, tmp_path):
    folder = build_tiny_vision_language_model(tmp_path / "tiny-vl", tiny_model_dir)
    backend = load_backend(parse_model_spec(str(folder)), CPU)
    assert backend.vision_language
    assert type(backend.model).__name__ == "Qwen3VLForConditionalGeneration"
    assert texts(backend, batch_size=4) == texts(backend, batch_size=1)
    batched = backend.score_choices(requests())
    single = [backend.score_choices([request])[0] for request in requests()]
    for one, other in zip(batched, single):
        assert one == pytest.approx(other, abs=1e-4)
    assert backend.format_prompt([{"role": "user", "content": "Xin chào"}]).startswith("<|im_start|>user\nXin chào")


def test_remote_code_is_refused_with_the_risk_explained(tiny_model_dir, tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    config = {"model_type": "my_custom_lm", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "configuration_custom.py").write_text("raise SystemExit('remote code ran')\n", encoding="utf-8")
    with pytest.raises(ModelError, match="ships its own Python code.*--trust-remote-code"):
        load_backend(parse_model_spec(str(folder)), CPU)


@pytest.mark.parametrize(
    ("text", "answer", "thinking", "unterminated"),
    [
        ("Hà Nội", "Hà Nội", None, False),
        ("<think>Thủ đô là gì?</think>\n\nHà Nội", "Hà Nội", "Thủ đô là gì?", False),
        ("Cân nhắc cả hai.</think>B", "B", "Cân nhắc cả hai.", False),  # the template opened the block
        ("<think>Để xem nào, đáp án có thể là", "", "Để xem nào, đáp án có thể là", True),
        ("<think></think>C", "C", "", False),
    ],
)
def test_thinking_blocks_are_split_from_the_answer(text, answer, thinking, unterminated):
    split = split_thinking(text)
    assert (split.answer, split.thinking, split.unterminated) == (answer, thinking, unterminated)


def test_out_of_memory_batches_back_off_to_smaller_sizes_with_the_same_results(tiny_model_dir, monkeypatch):
    """Fault injection: the real backend, made to run out of memory on batches larger than two."""
    backend = load_backend(parse_model_spec(str(tiny_model_dir)), CPU)
    expected = texts(backend, batch_size=1)
    real_generate = backend.generate

    def generate_with_small_memory(batch):
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real_generate(batch)

    monkeypatch.setattr(backend, "generate", generate_with_small_memory)
    runner = Runner(batch_size="auto")
    assert [p.text for p in runner.run(backend, requests(), "generate", "t × tiny")] == expected
    assert runner.batch_size == 2
    assert [(b.failed_size, b.retry_size) for b in runner.back_offs] == [(4, 2)]
    assert "out of memory (injected)" in runner.back_offs[0].error


def test_a_single_request_that_runs_out_of_memory_is_an_item_error(tiny_model_dir, monkeypatch):
    backend = load_backend(parse_model_spec(str(tiny_model_dir)), CPU)

    def no_memory(batch):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(backend, "generate", no_memory)
    predictions = Runner(batch_size=2).run(backend, requests()[:2], "generate")
    assert all("ran out of memory on a single request" in p.error for p in predictions)


def test_thinking_switch_and_an_inline_template_reach_the_chat_template(tiny_model_dir):
    from vnllmtest.backends.registry import load_aliases

    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}{{ ' /think' if enable_thinking else ' /no_think' }}"
    entry = {"hf": str(tiny_model_dir), "chat_template": template, "thinking": True}
    backend = load_backend(parse_model_spec("thinker", load_aliases([("test", {"thinker": entry})])), CPU)
    messages = [{"role": "user", "content": "Xin chào"}]
    assert backend.format_prompt(messages) == "Xin chào /no_think"
    assert backend.format_prompt(messages, thinking=True) == "Xin chào /think"


def test_a_processor_chat_template_is_used_when_the_tokenizer_has_none(tiny_model_dir, tmp_path):
    folder = build_tiny_vision_language_model(tmp_path / "tiny-vl", tiny_model_dir)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    for stray in folder.glob("chat_template.*"):
        stray.unlink()
    template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}), encoding="utf-8")
    backend = load_backend(parse_model_spec(str(folder)), CPU)
    assert backend.format_prompt([{"role": "user", "content": "Xin chào"}]) == "<user>Xin chào<assistant>"
