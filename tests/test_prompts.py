"""Prompt rendering: sandboxed templates, clear errors for missing fields, deterministic few-shot."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vnllmtest import prompts
from vnllmtest.evaluation import prompt_constants
from vnllmtest.loaders import DataOptions, Item, load_data
from vnllmtest.messages import plain_prompt
from vnllmtest.prompts import PromptBuilder, PromptError, PromptLimitError, limit_error, render
from vnllmtest.prompt_spec import FewShot, PromptLimits, PromptSpec
from vnllmtest.suite import load_suite

REPO_SUITES = Path(__file__).resolve().parents[1] / "suites"


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


# --- bounded rendering: what real templates do renders exactly as stock Jinja; errors are prompt errors ----------

STOCK = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, autoescape=False
)
LEGIT = [
    "{% for c in choices %}{{ loop.index }}/{{ loop.length }} {{ c|center(9) }}{% if not loop.last %}\n{% endif %}{% endfor %}",
    "{{ 'Câu ' ~ 1 ~ ': ' ~ question }} {{ '%s (%d)'|format(question, 3) }} {{ '{:>6}|{:.2f}'.format('a', 0.5) }}",
    "{{ choices|join(', ') }} {{ (choices * 2)|length }} {{ choices + ['E'] }} {{ 2 ** 10 }} {{ '%05.1f' % 3.14159 }}",
    "{% macro opt(l, t) %}{{ l }}. {{ t|trim }}{% endmacro %}{% for c in choices %}{{ opt('ABCD'[loop.index0], c) }}\n{% endfor %}",
    "{% set block %}{{ question|upper }}{% endset %}{{ block|wordwrap(5) }} {{ question|indent(2, first=true) }}",
    "{% autoescape true %}{{ '<b>' ~ question }}{% endautoescape %} {{ choices|tojson(indent=2) }}",
    "{% for row in choices|batch(3, '-') %}{{ row|join }}{% endfor %} {{ choices|slice(2)|list }} {{ [[1], [2]]|sum(start=[]) }}",
    "{{ question.replace('a', 'bb').ljust(20, '.') }}{{ ('\\t' ~ question).expandtabs(4) }}{{ [1, 2.5]|sum }}",
    "{% for x in choices recursive %}{{ x }}{% endfor %}{% set ns = namespace(n=0) %}{% for c in choices %}"
    "{% set ns.n = ns.n + c|length %}{% endfor %}{{ ns.n }} {{ cycler('a', 'b').next() }}",
]


@pytest.mark.parametrize("template", LEGIT)
def test_legitimate_templates_render_as_stock_jinja_renders_them(template):
    fields = {"question": "Hà Nội ở đâu?", "choices": ["Miền Bắc", "Miền Nam", "Miền Trung", "Tây Nguyên"]}
    assert render(template, fields) == STOCK.from_string(template).render(**fields).strip()


@pytest.mark.parametrize("path", sorted(REPO_SUITES.glob("*.yaml")), ids=lambda path: path.stem)
def test_bundled_suites_render_every_sample_exactly_as_stock_jinja(path, monkeypatch):
    suite = load_suite(path)
    data = load_data(suite, DataOptions(mode="sample"))
    items = [entry for entry in data.entries if isinstance(entry, Item)]
    builder = PromptBuilder(suite.spec.prompt, data.pool, prompt_constants(suite.spec))
    bounded = [builder.messages(entry) for entry in items]
    monkeypatch.setattr(prompts, "render", lambda source, fields, *_: STOCK.from_string(source).render(**fields).strip())
    assert bounded == [builder.messages(entry) for entry in items]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ 1 / 0 }}", "prompt template: ZeroDivisionError: division by zero"),
        ("{{ question - 1 }}", "prompt template: TypeError: unsupported operand type(s) for -"),
        ("{{ 2 ** 20000 }}", "prompt template: ValueError: Exceeds the limit (4300 digits)"),
        ("{{ {}['k' * 100000] }}", "prompt template: 'dict object' has no attribute 'kkkk"),
    ],
)
def test_a_template_failing_at_run_time_is_a_short_prompt_error(template, problem):
    with pytest.raises(PromptError) as caught:  # these once escaped as raw exceptions, or as 100 kB messages
        render(template, {"question": "x"})
    assert str(caught.value).startswith(problem) and len(str(caught.value)) < 600


def test_the_character_limit_covers_every_turn_of_the_prompt_and_the_suite_can_raise_it():
    pool = [item(f"q{i}", "Câu hỏi " * 50_000, "Đáp") for i in range(3)]  # 400,000 characters each
    spec = PromptSpec(template="{{ question }}", fewshot=FewShot(k=2, target="{{ answer }}"))
    with pytest.raises(PromptLimitError, match=r"^prompt\.template: rendering stopped: the prompt grew past 1,000,000"):
        PromptBuilder(spec, pool).messages(pool[0])
    raised = spec.model_copy(update={"limits": PromptLimits(max_chars=2_000_000)})
    assert len(PromptBuilder(raised, pool).messages(pool[0])) == 5


def test_a_limit_error_names_the_template_that_hit_it():
    spec = PromptSpec(system="{{ 'x' * 2000000 }}", template="{{ question }}", limits=PromptLimits(max_seconds=1))
    with pytest.raises(PromptLimitError, match=r"^prompt\.system: rendering stopped: .* raise prompt\.limits\.max_chars"):
        PromptBuilder(spec, POOL).messages(POOL[0])
    assert limit_error(spec, POOL, POOL[0], {}) is not None
    assert limit_error(PromptSpec(template="{{ nowhere }}"), POOL, POOL[0], {}) is None  # left to the item


def test_collection_blames_the_template_only_when_a_short_copy_of_the_record_also_goes_past_the_limit():
    """The first record decides at collection whether a limit error is the suite's: a record that is
    itself too long (its texts cut to 300 characters render) is left to its item, while a template that
    builds too much from any record, or a few-shot example every prompt holds, is the suite's error."""
    long_first = [item("q0", "Câu hỏi " * 150_000, "Đáp"), *POOL[1:]]  # 1,200,000 characters
    assert limit_error(PromptSpec(template="{{ question }}"), long_first, long_first[0], {}) is None
    bomb = PromptSpec(template="{{ question * 100000 }}")
    assert "a repeated text or list would have 1,300,000 characters" in str(limit_error(bomb, POOL, POOL[0], {}))
    shots = PromptSpec(template="{{ question }}", fewshot=FewShot(k=5, target="{{ answer }}"))
    assert "the prompt grew past 1,000,000" in str(limit_error(shots, long_first, long_first[1], {}))


def test_a_budgeted_field_may_pass_through_beyond_max_chars_but_not_twice():
    """The budgeted field's own characters are allowed on top of max_chars (the budget cuts them to size);
    what the template makes of them is not."""
    fields = {"question": "Câu hỏi " * 150_000}  # 1,200,000 characters
    budget = {"max_tokens": 100_000, "field": "question"}
    once = PromptSpec.model_validate({"template": "Hỏi: {{ question }}", "budget": budget})
    target = Item(id="q0", fields=fields, references=("x",))
    assert len(PromptBuilder(once, []).messages(target, fields)[0]["content"]) == 1_200_004
    twice = once.model_copy(update={"template": "{{ question }}{{ question }}"})
    with pytest.raises(PromptLimitError, match=r"grew past 2,200,000 characters \(1,000,000 and the 1,200,000 of"):
        PromptBuilder(twice, []).messages(target, fields)
    repeated = once.model_copy(update={"template": "{{ question * 2 }}"})
    with pytest.raises(PromptLimitError, match=r"a repeated text or list would have 2,400,000 characters, more than 1,000,000"):
        PromptBuilder(repeated, []).messages(target, fields)
