"""Memory and CPU bombs in suites and templates stop at a bound, with an error naming the file, the template
and the key that raises the bound. Every bomb runs in a subprocess under RLIMIT_AS and RLIMIT_CPU with a
wall-clock timeout, so that a regression fails its test instead of exhausting the machine or hanging CI."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from support import INNER_RUN_INI, write_jsonl

MEMORY = 2 << 30  # bytes of address space for a bomb's process (Python and the imports need a few hundred MB)
CPU_SECONDS = 30


def run_limited(args: list[str], cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`python args...` under RLIMIT_AS/RLIMIT_CPU; a run past `timeout` seconds fails the test."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run(
            [sys.executable, *args], preexec_fn=limit, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s: the bomb was not stopped")


# Renders one template for a record through the prompt builder (as an item is rendered), with a CPU-time
# limit of 1 s so that time bombs end quickly; prints the error class, message and CPU seconds used.
RENDER = """
import json, sys, time
from vnllmtest.loaders import Item
from vnllmtest.prompts import PromptBuilder
from vnllmtest.suite import PromptSpec
template = sys.argv[1]
item = Item(id="r1", fields={"id": "r1", "question": "abc"}, references=("x",))
spec = PromptSpec.model_validate({"template": template, "limits": {"max_seconds": 1}})
started = time.process_time()
try:
    PromptBuilder(spec, [item]).messages(item)
    outcome = ("rendered", "")
except Exception as exc:
    outcome = (type(exc).__name__, str(exc))
print(json.dumps([*outcome, time.process_time() - started]))
"""

NS = '{% set ns = namespace(s="x", l=[], x=3) %}'
BOMBS = {  # name: (template, what the error says)
    "text_times_4e9": ('{{ "x" * 4000000000 }}', "a repeated text or list would have 4,000,000,000 characters"),
    "field_times_6e7": ("{{ question * 60000000 }}", "would have 180,000,000 characters"),
    "nested_range_loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "took more than 1 s of CPU time; raise prompt.limits.max_seconds",
    ),
    "nested_loops_over_text": (
        "{% for a in question * 3000 %}{% for b in question * 3000 %}{% endfor %}{% endfor %}",
        "prompt.limits.max_seconds",
    ),
    "repeat_in_a_loop": ('{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}', "the prompt grew past 1,000,000"),
    "join_of_a_huge_range": ('{{ range(100000)|join("x" * 100000) }}', "|join would have"),
    "percent_width": ('{{ "%999999999s" % "x" }}', "a %-formatted text would have"),
    "percent_star_width": ('{{ "%*s" % (999999999, "x") }}', "a %-formatted text would have"),
    "percent_mapping_repeated": ('{{ ("%(a)s" * 100000) % {"a": "x" * 100000} }}', "a %-formatted text would have"),
    "format_width": ('{{ "{:>999999999}".format(1) }}', "a format() field would have 999,999,999 characters"),
    "format_precision": ('{{ "{:.999999999f}".format(1.0) }}', "a format() field would have"),
    "format_field_repeated": ('{{ ("{0}" * 100000).format("x" * 100000) }}', "a format() result would have"),
    "format_filter_precision": ('{{ "%.999999999f"|format(1.0) }}', "a %-formatted text would have"),
    "center_filter": ('{{ "x"|center(10**9) }}', "|center would have 1,000,000,000 characters"),
    "indent_filter": ('{{ "a\\nb"|indent(width=10**9) }}', "|indent would have"),
    "wordwrap_of_a_long_word": ('{{ ("x" * 400000)|wordwrap(1) }}', "|wordwrap would take about"),
    "wordwrap_wrapstring": ('{{ ("x " * 100000)|wordwrap(1, wrapstring="y" * 10000) }}', "|wordwrap would have"),
    "list_of_a_huge_range": ("{{ range(10**9)|list|length }}", "Range too big"),
    "lipsum": ("{{ lipsum(10**6) }}", "lipsum() would have"),
    "recursive_macro": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "prompt.template recursed too deeply"),
    "exponential_macro": (
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}x{% endmacro %}{{ f(40) }}",
        "prompt.limits.max_",
    ),
    "self_calling_block": ("{% block a %}x{{ self.a() }}{{ self.a() }}{% endblock %}", "recursed too deeply"),
    "recursive_loop": (
        "{% for x in range(100000) recursive %}{% if loop.depth < 3 %}{{ loop(range(100000)) }}{% endif %}{% endfor %}",
        "prompt.limits.max_seconds",
    ),
    "doubling_with_tilde": (NS + "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
                            "a text joined with ~ would have"),  # fmt: skip
    "doubling_with_plus": (NS + "{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
                           "a joined text or list would have"),  # fmt: skip
    "power_tower": ("{{ 10 ** (10 ** 8) }}", "a number would have about"),
    "squaring_loop": (NS + "{% for i in range(100) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}", "bits"),
    "macro_output": (
        '{% macro m() %}{% for i in range(100000) %}{{ "x" * 100000 }}{% endfor %}{% endmacro %}{{ m() }}',
        "a block's output would have",
    ),
    "set_block_output": (
        "{% set x %}{% for i in range(100000) %}{{ question * 100 }}{% endfor %}{% endset %}{{ x|length }}",
        "a block's output would have",
    ),
    "list_growing_in_a_loop": (
        NS + "{% for i in range(100000) %}{% set ns.l = ns.l + [question * 1000] %}{% endfor %}{{ ns.l|length }}",
        "a joined text or list would have",
    ),
    "shared_nested_lists_summed": ("{{ ([[question] * 1000] * 1000)|sum(start=[])|length }}", "would have 4,001,000"),
    "replace_of_the_empty_string": ('{{ (question * 1000)|replace("", "y" * 100000) }}', "|replace would have"),
    "str_ljust": ('{{ "x".ljust(10**9) }}', "ljust() would have"),
    "str_replace_method": ('{{ (question * 1000).replace("", "y" * 100000) }}', "replace() would have"),
    "str_translate": ('{{ (question * 10000).translate({97: "y" * 10000}) }}', "translate() would have"),
    "str_expandtabs": ('{{ ("\\t" * 100000).expandtabs(100000) }}', "expandtabs() would have"),
    "int_to_bytes": ('{{ (1).to_bytes(10**9, "big") }}', "to_bytes() would have"),
    "batch_fill": ('{{ [1]|batch(10**9, "x")|list }}', "|batch would have"),
    "slice_count": ("{{ [1]|slice(10**9)|list }}", "|slice would have"),
    "tojson_indent": ("{{ [[[[1]]]]|tojson(indent=10**8) }}", "|tojson would have"),
    "cycler_in_nested_loops": (
        "{% set c = cycler(*range(1000)) %}{% for i in range(100000) %}{% for j in range(100000) %}"
        "{{ c.next() }}{% endfor %}{% endfor %}",
        "prompt.limits.max_",
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_template_bomb_stops_at_a_limit_while_rendering(name):
    template, expected = BOMBS[name]
    done = run_limited(["-c", RENDER, template])
    assert done.returncode == 0, done.stderr[-3000:]
    error, message, cpu = json.loads(done.stdout)
    assert error in ("PromptLimitError", "PromptError") and expected in message, message
    assert len(message) < 600
    if error == "PromptLimitError":
        assert message.startswith("prompt.template: rendering stopped:")
    assert cpu < 8  # one second of CPU time allowed, plus the last bounded step


BASE = """vnllmtest: 1
name: qa
task: extractive_qa
dataset: {adapter: vims, source: data/qa.jsonl, options: {input: s3}}
prompt:
  template: "{{ context }} {{ question }}"
metrics: [f1]
item_pass: {metric: f1, min: 0.5}
"""
# Nine levels of nine aliases: 387,420,489 strings from 550 bytes ("billion laughs").
LAUGHS = "l0: &l0 lol\n" + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))

LOAD = """
import json, sys, time
from pathlib import Path
from vnllmtest.suite import SuiteError, load_suite
started = time.process_time()
try:
    load_suite(Path(sys.argv[1]))
    outcome = ("loaded", "")
except Exception as exc:
    outcome = (type(exc).__name__, str(exc))
print(json.dumps([*outcome, time.process_time() - started]))
"""


def test_a_yaml_alias_bomb_is_refused_at_once_naming_file_and_line(tmp_path):
    bomb = BASE.replace("options: {input: s3}", "options: {input: *l9}").replace("name: qa\n", "name: qa\n" + LAUGHS)
    path = tmp_path / "suite.yaml"
    path.write_text(bomb, encoding="utf-8")
    assert len(bomb.encode()) < 900
    done = run_limited(["-c", LOAD, str(path)])
    assert done.returncode == 0, done.stderr[-3000:]
    error, message, cpu = json.loads(done.stdout)
    assert error == "SuiteError" and cpu < 5
    assert message == (
        f"{path}:8:10: refused: YAML aliases (*l4 here) repeat more than 10,000 nodes in all; write the values out instead"
    )


def test_an_alias_bomb_in_an_unknown_key_is_refused_too(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(BASE + LAUGHS, encoding="utf-8")
    done = run_limited(["-c", LOAD, str(path)])
    error, message, _ = json.loads(done.stdout)
    assert error == "SuiteError" and "refused: YAML aliases (*l4 here) repeat more than 10,000 nodes" in message


def test_a_value_in_a_validation_error_is_shown_cut(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("{input: s3}", "{input: " + "x" * 500_000 + "}"), encoding="utf-8")
    done = run_limited(["-c", LOAD, str(path)])
    error, message, _ = json.loads(done.stdout)
    assert error == "SuiteError" and len(message) < 600
    assert "options.input must be one of s3, documents, got 'xxxx" in message and "(500,000 characters in all)" in message


# --- end to end: the suite error at collection, the item error for one record, the judge's sections --------------

QA = """vnllmtest: 1
name: {name}
task: extractive_qa
dataset: {{adapter: squad_v2, source: data/qa.jsonl}}
prompt:
  template: "{template}"
{limits}metrics: [f1]
item_pass: {{metric: f1, min: 0.5}}
gates:
  - {{metric: f1, min: 40}}
"""
LONG_CONTEXT = "Hà Nội " * 200_000  # 1,400,000 characters: past the default limit, a real (if odd) record
RECORDS = [
    {"id": "q1", "context": "Hà Nội là thủ đô.", "question": "Thủ đô?", "answers": {"text": ["Hà Nội"]}},
    {"id": "q2", "context": LONG_CONTEXT, "question": "Thủ đô?", "answers": {"text": ["Hà Nội"]}},
]


def qa_project(root: Path, suites: dict[str, tuple[str, str]]) -> None:
    (root / "pytest.ini").write_text(INNER_RUN_INI, encoding="utf-8")
    write_jsonl(root / "suites" / "data" / "qa.jsonl", RECORDS)
    write_jsonl(root / "preds.jsonl", [{"id": r["id"], "prediction": "Hà Nội"} for r in RECORDS])
    for name, (template, limits) in suites.items():
        text = QA.format(name=name, template=template, limits=limits)
        (root / "suites" / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_a_template_bomb_is_a_collection_error_naming_suite_template_and_key(tmp_path):
    qa_project(tmp_path, {"bomb": ('{{ context }}{{ \\"x\\" * 4000000000 }}', ""), "plain": ("{{ context }}", "")})
    done = run_limited(["-m", "pytest", "suites", "--model", "replay:preds.jsonl", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout[-3000:]
    assert (
        f"{tmp_path / 'suites' / 'bomb.yaml'}: prompt.template: rendering stopped: a repeated text or list would have "
        "4,000,000,000 characters, more than 1,000,000; raise prompt.limits.max_chars in the suite if the prompt really "
        "needs more (found rendering the first record, q1, at collection)"
    ) in done.stdout
    assert "suites/bomb.yaml" in done.stdout and "(suite not collected)" in done.stdout


def test_a_record_past_the_limit_is_an_item_error_and_the_suite_key_raises_the_limit(pytester):
    qa_project(
        pytester.path,
        {"qa": ("{{ context }} {{ question }}", ""), "raised": ("{{ context }} {{ question }}", "  limits: {max_chars: 2000000}\n")},
    )
    result = pytester.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run] = sorted((pytester.path / "reports").iterdir())
    items = {(i["suite"], i["id"]): i for i in map(json.loads, (run / "items.jsonl").read_text("utf-8").splitlines())}
    error = items[("qa", "q2")]
    assert error["status"] == "error" and error["failure_class"] == "bad_prompt"
    assert error["message"].endswith(
        "record q2: prompt.template: rendering stopped: the prompt grew past 1,000,000 characters; raise "
        "prompt.limits.max_chars in the suite if the prompt really needs more"
    )
    assert items[("qa", "q1")]["status"] == "passed"
    assert items[("raised", "q2")]["status"] == "passed" and len(items[("raised", "q2")]["prompt"]) > 1_000_000


JUDGED = """judge:
  rubric: answer_quality
  sees: [{title: Trả lời, text: "{{ output * 3 }}"}]
gates:"""


def test_a_judge_section_past_the_limit_fails_the_judged_item_naming_the_section(pytester):
    qa_project(pytester.path, {"judged": ("{{ question }}", "  limits: {max_chars: 1000}\n")})
    path = pytester.path / "suites" / "judged.yaml"
    path.write_text(path.read_text("utf-8").replace("gates:", JUDGED), encoding="utf-8")
    write_jsonl(pytester.path / "preds.jsonl", [{"id": "q1", "prediction": "Hà Nội"}, {"id": "q2", "prediction": "x" * 400}])
    reply = '{"accuracy": 9, "faithfulness": 9, "coherence": 9}'
    write_jsonl(pytester.path / "judge.jsonl", [{"id": i, "prediction": reply, "suite": "judged"} for i in ("q1", "q2")])
    result = pytester.runpytest("suites", "--model", "replay:preds.jsonl", "--judge", "replay:judge.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run] = sorted((pytester.path / "reports").iterdir())
    items = {i["id"]: i for i in map(json.loads, (run / "items.jsonl").read_text("utf-8").splitlines())}
    assert items["q2"]["status"] == "error" and items["q2"]["failure_class"] == "judge_failed"
    assert (
        "judge prompt: judge.sees.0.text: rendering stopped: a repeated text or list would have 1,200 characters, "
        "more than 1,000" in items["q2"]["message"]
    )
    assert "raise prompt.limits.max_chars" in items["q2"]["message"]
    assert items["q1"]["failure_class"] != "judge_failed"
