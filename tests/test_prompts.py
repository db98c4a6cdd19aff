"""Prompt rendering: sandboxed templates, clear errors for missing fields, deterministic few-shot."""

from __future__ import annotations

import pytest

from vnllmtest.loaders import Item
from vnllmtest.prompts import PromptBuilder, PromptError, plain_prompt, render
from vnllmtest.suite import FewShot, PromptSpec


def item(item_id: str, question: str, answer: str) -> Item:
    return Item(id=item_id, fields={"id": item_id, "question": question}, references=(answer,))


POOL = [item(f"q{i}", f"Câu hỏi số {i}?", f"Đáp {i}") for i in range(6)]


def test_render_strips_and_fills_fields():
    assert render("  Hỏi: {{ question }}\n", {"question": "Hà Nội ở đâu?"}) == "Hỏi: Hà Nội ở đâu?"


def test_missing_field_names_it_and_lists_the_record_fields():
    with pytest.raises(PromptError, match=r"'context' is undefined; the record has fields \['id', 'question'\]"):
        render("{{ context }}", {"id": "1", "question": "?"})


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__.__mro__ }}", "{{ question.__class__.__init__.__globals__ }}", "{{ cycler.__init__.__globals__.os }}"],
)
def test_templates_cannot_reach_python_internals(template):
    with pytest.raises(PromptError):
        render(template, {"question": "x"})


def test_messages_with_system_and_no_shots():
    builder = PromptBuilder(PromptSpec(system="Bạn là trợ lý.", template="Hỏi: {{ question }}"), POOL)
    assert builder.messages(POOL[0]) == [
        {"role": "system", "content": "Bạn là trợ lý."},
        {"role": "user", "content": "Hỏi: Câu hỏi số 0?"},
    ]


def test_fewshot_is_deterministic_and_never_shows_the_item_itself():
    spec = PromptSpec(template="Hỏi: {{ question }}", fewshot=FewShot(k=2, seed=1, target="{{ answer }}"))
    builder = PromptBuilder(spec, POOL)
    for target in POOL:
        messages = builder.messages(target)
        assert len(messages) == 5
        shown = [m["content"] for m in messages[:-1] if m["role"] == "user"]
        assert f"Hỏi: {target.fields['question']}" not in shown
        assert messages[1]["content"].startswith("Đáp ")
    assert PromptBuilder(spec, list(reversed(POOL))).messages(POOL[0]) == builder.messages(POOL[0])


def test_plain_prompt_puts_answers_after_their_questions():
    messages = [
        {"role": "system", "content": "Hệ thống."},
        {"role": "user", "content": "Hỏi: 1 + 1?\nĐáp án:"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Hỏi: 2 + 2?\nĐáp án:"},
    ]
    assert plain_prompt(messages) == "Hệ thống.\n\nHỏi: 1 + 1?\nĐáp án: 2\n\nHỏi: 2 + 2?\nĐáp án:"
