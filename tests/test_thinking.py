"""Thinking replies: a prompt that opens the think block makes the reply thinking until `</think>`.

The templates below are our own; they reproduce the structure of the aliased models' public chat
templates: Qwen3 closes an empty block when thinking is off and lets the model open its own when on;
newer Qwen3.x templates also open `<think>\\n` themselves when it is on; thinking-only checkpoints
(Qwen3-VL-Thinking style) always open it. Past assistant turns carry a closed block.
"""

from __future__ import annotations

import pytest

from vnllmtest.backends import HFSettings, Request, load_backend
from vnllmtest.backends.registry import load_aliases, parse_model_spec
from vnllmtest.cache import PredictionCache, cache_key
from vnllmtest.evaluation import evaluate
from vnllmtest.loaders import DataOptions, load_data
from vnllmtest.loaders.base import Item
from vnllmtest.runner import Prediction, Runner
from vnllmtest.scoring import score
from vnllmtest.suite import load_suite
from vnllmtest.thinking import cut_at_stop, opens_thinking, split_thinking

from support import REPO

TURNS = (
    "{% for m in messages %}{% if m.role == 'assistant' %}"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n{{ m.content }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
)
OFF = "enable_thinking is defined and enable_thinking is false"
CLOSES_WHEN_OFF = TURNS + (
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if " + OFF + " %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
OPENS_WHEN_ON = TURNS + (
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if " + OFF + " %}<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}{% endif %}"
)
ALWAYS_OPENS = TURNS + "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"

# (template, thinking on, whether the rendered prompt leaves the block open)
CASES = [
    (CLOSES_WHEN_OFF, False, False),
    (CLOSES_WHEN_OFF, True, False),
    (OPENS_WHEN_ON, False, False),
    (OPENS_WHEN_ON, True, True),
    (ALWAYS_OPENS, False, True),
    (ALWAYS_OPENS, True, True),
]
FEW_SHOT = [
    {"role": "system", "content": "Trả lời ngắn gọn bằng tiếng Việt."},
    {"role": "user", "content": "Thành phố nào là cố đô của triều Nguyễn?"},
    {"role": "assistant", "content": "Huế"},
    {"role": "user", "content": "Sông nào chảy qua thành phố Cần Thơ?"},
]
CPU = HFSettings(device="cpu")


def thinker(model_dir, template):
    entry = {"hf": str(model_dir), "chat_template": template, "thinking": True}
    return load_backend(parse_model_spec("thinker", load_aliases([("test", {"thinker": entry})])), CPU)


# ---------------------------------------------------------------- the rule, on text


@pytest.mark.parametrize(
    ("prompt", "opened"),
    [
        ("<|im_start|>assistant\n<think>\n", True),
        ("<|im_start|>assistant\n<think>\n\n</think>\n\n", False),
        ("<|im_start|>assistant\n", False),
        ("<think>\n\n</think>\n\nHuế<|im_end|>\n<|im_start|>assistant\n<think>\n", True),
        ("<think>\n\n</think>\n\nHuế<|im_end|>\n<|im_start|>assistant\n", False),
        ("Câu hỏi: Phở là gì?\nTrả lời:", False),
        ("<think>", True),
        ("</think>", False),
    ],
)
def test_an_open_block_is_the_last_opening_tag_after_the_last_closing_one(prompt, opened):
    assert opens_thinking(prompt) is opened


# (reply, answer, thinking, unterminated) after a prompt that opened the block
OPENED_REPLIES = [
    ("Đoạn văn nói về Huế.\n</think>\n\nHuế", "Huế", "Đoạn văn nói về Huế.", False),
    ("\n</think>\n\nSông Hậu", "Sông Hậu", "", False),
    ("Mình cần tìm năm thành lập, đoạn văn ghi", "", "Mình cần tìm năm thành lập, đoạn văn ghi", True),
    ("", "", "", True),
    ("<think>\nMô hình lặp lại thẻ mở.</think>Đà Lạt", "Đà Lạt", "Mô hình lặp lại thẻ mở.", False),
    ("Xem lại.</think>Đáp án: B<think>Nghĩ thêm", "Đáp án: B", "Xem lại.\n\nNghĩ thêm", True),
]


@pytest.mark.parametrize(("reply", "answer", "thinking", "unterminated"), OPENED_REPLIES)
def test_after_an_opening_prompt_the_reply_thinks_until_the_block_closes(reply, answer, thinking, unterminated):
    split = split_thinking(reply, opened=True)
    assert (split.answer, split.thinking, split.unterminated) == (answer, thinking, unterminated)


@pytest.mark.parametrize("reply", ["Huế", "Mình cần tìm năm thành lập", "Đáp án: C"])
def test_the_same_tagless_reply_is_an_answer_or_unfinished_thinking_by_the_prompt(reply):
    assert split_thinking(reply) == split_thinking(reply, opened=False)
    assert (split_thinking(reply).answer, split_thinking(reply).thinking) == (reply, None)
    opened = split_thinking(reply, opened=True)
    assert (opened.answer, opened.thinking, opened.unterminated) == ("", reply, True)


# ---------------------------------------------------------------- on a real (tiny) model


@pytest.mark.parametrize(("template", "thinking", "opened"), CASES)
def test_templates_decide_how_a_reply_is_split(tiny_model_dir, tmp_path, template, thinking, opened):
    backend = thinker(tiny_model_dir, template)
    prompt = backend.format_prompt(FEW_SHOT, thinking)
    assert prompt.count("<think>") == 2 - (template is CLOSES_WHEN_OFF and thinking)
    assert opens_thinking(prompt) is opened
    request = Request("qa", "q1", prompt, (), 6)
    raw = backend.generate([request])[0].text
    assert "think>" not in raw  # random weights: the reply never writes a tag of its own
    cache = PredictionCache(tmp_path / "cache")
    first = Runner(cache).run(backend, [request], "generate")[0]
    if opened:
        assert (first.text, first.thinking, first.thinking_unterminated) == ("", raw.strip(), True)
        assert first.thinking_tokens == (backend.prompt_length(raw.strip()) if raw.strip() else 0)
    else:
        assert (first.text, first.thinking, first.thinking_unterminated) == (raw, None, False)
    again = Runner(cache).run(backend, [request], "generate")[0]
    assert again.cached and again.to_cache() == first.to_cache()


def test_a_prediction_cached_before_open_blocks_were_detected_is_not_reused(tiny_model_dir, tmp_path):
    backend = thinker(tiny_model_dir, OPENS_WHEN_ON)
    request = Request("qa", "q1", backend.format_prompt(FEW_SHOT, True), (), 6)
    stale = Prediction("generate", "Mình đang nghĩ", None, "length", 6)  # the thinking, scored as the answer
    cache = PredictionCache(tmp_path / "cache")
    old_key = cache_key(backend.fingerprint, "generate", prompt=request.prompt, max_new_tokens=6, stop=[])
    cache.put_many({old_key: stale.to_cache()})
    fresh = Runner(cache).run(backend, [request], "generate")[0]
    assert not fresh.cached and fresh.cache_key != old_key
    assert fresh.text == "" and fresh.thinking_unterminated


# ---------------------------------------------------------------- scoring


def test_a_reply_that_ran_out_while_thinking_is_its_own_miss():
    spec = load_suite(REPO / "suites" / "visquad2.yaml").spec
    item = Item("q1", {"context": "Huế là cố đô.", "question": "Cố đô là gì?"}, ("Huế",))
    split = split_thinking("Đoạn văn nói Huế là cố đô, vậy đáp án là Huế", opened=True)
    prediction = Prediction(
        "generate", split.answer, None, "length", 72, thinking=split.thinking, thinking_unterminated=split.unterminated
    )
    outcome = score(spec, item, prediction)
    assert (outcome.status, outcome.failure_class, outcome.answer) == ("missed", "thinking_unterminated", "")
    assert outcome.metrics == {"exact_match": 0.0, "f1": 0.0}


# ---------------------------------------------------------------- stop strings end the answer, not the thinking


@pytest.mark.parametrize(
    ("text", "opened", "expected"),
    [
        ("Huế\nvì là cố đô", False, ("Huế", True)),
        ("<think>Đoạn văn\nnói về Huế</think>Huế\nthêm", False, ("<think>Đoạn văn\nnói về Huế</think>Huế", True)),
        ("Đoạn văn\nnói về Huế</think>Huế\nthêm", True, ("Đoạn văn\nnói về Huế</think>Huế", True)),
        ("Đoạn văn\nnói về Huế", True, ("Đoạn văn\nnói về Huế", False)),  # still thinking: nothing to cut
        ("<think>Đoạn văn\nnói", False, ("<think>Đoạn văn\nnói", False)),
        ("<think>a</think>Huế<think>lại\nnghĩ", False, ("<think>a</think>Huế<think>lại\nnghĩ", False)),
        ("Huế", True, ("Huế", False)),
        ("", False, ("", False)),
    ],
)
def test_stop_strings_count_only_in_the_answer(text, opened, expected):
    assert cut_at_stop(text, ("\n",), opened) == expected


def test_a_thinking_model_is_not_stopped_by_a_stop_string_inside_its_thinking(tiny_model_dir):
    backend = thinker(tiny_model_dir, ALWAYS_OPENS)
    prompt = backend.format_prompt(FEW_SHOT, True)
    raw = backend.generate([Request("qa", "q1", prompt, (), 12)])[0].text
    stop = raw.strip()[-2:]  # a piece of its own (greedy, so repeatable) thinking
    stopped = backend.generate([Request("qa", "q1", prompt, (), 12, (stop,))])[0]
    thinking = backend.generate([Request("qa", "q1", prompt, (), 12, (stop,), thinking=True)])[0]
    assert stopped.new_tokens < 12  # without thinking, generation stops there
    assert (thinking.text, thinking.new_tokens, thinking.finish_reason) == (raw, 12, "length")
    [prediction] = Runner().run(backend, [Request("qa", "q1", prompt, (), 12, (stop,), thinking=True)], "generate")
    assert prediction.thinking_unterminated and prediction.text == ""


def test_a_template_that_always_opens_the_block_thinks_with_thinking_off(tiny_model_dir, tmp_path):
    """Thinking-only templates open `<think>` even with thinking off: a suite's stop strings must
    not end that thinking either."""
    backend = thinker(tiny_model_dir, ALWAYS_OPENS)
    text = (REPO / "suites" / "visquad2.yaml").read_text(encoding="utf-8")
    assert 'stop: ["\\n"]' in text
    text = text.replace('stop: ["\\n"]', 'stop: [" "]').replace("sample: data/", f"sample: {REPO / 'suites' / 'data'}/")
    (tmp_path / "visquad2.yaml").write_text(text, encoding="utf-8")
    suite = load_suite(tmp_path / "visquad2.yaml")
    data = load_data(suite, DataOptions(mode="sample", limit=2, allow_outside=True))  # the bundled sample, from tmp
    results = evaluate(backend, suite, data, data.entries, Runner(), max_new_tokens_cap=12, thinking=False)
    for result in results.values():
        assert opens_thinking(result.prompt)
        raw = backend.generate([Request("qa", "q", result.prompt, (), 12)])[0].text.strip()
        assert " " in raw  # the stop string occurs in the thinking: it would have cut it there
        assert (result.thinking, result.output, result.failure_class) == (raw, "", "thinking_unterminated")
