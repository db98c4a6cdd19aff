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

import jinja2
import pytest
from packaging.version import Version
from support import REPO, run_folders

from jinja2.utils import Cycler, Namespace

from vnllmtest.prompts import PromptLimitError, render
from vnllmtest.quota import text_size
from vnllmtest.sandbox import BoundedEnvironment

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
from vnllmtest.prompt_spec import PromptSpec
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
# Shared parts: thirty doublings make a list that str() would write out as ten gigabytes, in one C call.
WRITTEN = "a list or dict the template writes would have"
SHARED = "{% set a = ['xxxxxxxxxx'] %}" + "{% set a = [a, a] %}" * 30
BOMBS |= {
    "shared_list_shown": (SHARED + "{{ a }}", WRITTEN),
    "shared_list_joined_with_tilde": (SHARED + "{{ a ~ '' }}", WRITTEN),
    "shared_list_formatted": (SHARED + "{{ '{}'.format(a) }}", WRITTEN),
    "shared_list_string_filter": (SHARED + "{{ a|string }}", WRITTEN),
    "shared_list_pprint": (SHARED + "{{ a|pprint }}", WRITTEN),
    "shared_tuples": ("{% set a = ('x',) %}" + "{% set a = (a, a) %}" * 30 + "{{ a }}", WRITTEN),
    "shared_dicts": ("{% set a = {'k': 'x'} %}" + "{% set a = {'k': a, 'j': a} %}" * 30 + "{{ a }}", WRITTEN),
    "shared_dict_global": ("{% set a = 'x' %}" + "{% set a = dict(k=a, j=a) %}" * 30 + "{{ a }}", "dict() would have"),
    "shared_namespace_global": (
        "{% set a = 'x' %}" + "{% set a = namespace(k=a, j=a) %}" * 30 + "{{ a }}", "Namespace() would have"
    ),
    "shared_cycler_items": ("{% set a = 'x' %}" + "{% set a = cycler(a, a).items %}" * 30 + "{{ a }}", "Cycler() would"),
    "shared_fromkeys": ("{% set a = 'x' %}" + "{% set a = {}.fromkeys(range(9), a) %}" * 12 + "{{ a }}", "fromkeys() would"),
    "shared_batch_fill": ("{% set a = 'x' %}" + "{% set a = [1]|batch(3, a)|first %}" * 30 + "{{ a }}", "|batch would"),
    "measuring_a_chain_rebuilt_in_a_loop": (  # each step measures the whole chain: the deadline bounds it
        NS + "{% for i in range(100000) %}{% set ns.l = [ns.l, i] %}{% endfor %}{{ ns.l|length }}", "max_seconds"
    ),
}
# A namespace changed after it was built holds no copy, but shows one: every way to text measures it first.
GROWN = "{% set n0 = namespace(v='xxxxxxxxxx') %}" + "".join(
    f"{{% set n{i} = namespace() %}}{{% set n{i}.a = n{i - 1} %}}{{% set n{i}.b = n{i - 1} %}}" for i in range(1, 31)
)
BOMBS |= {
    f"grown_namespace_{name}": (GROWN + use, expected)
    for name, use, expected in [
        ("shown", "{{ n30 }}", "a value shown with {{ }} would have"),
        ("tilde", "{{ n30 ~ '' }}", "a text joined with ~ would have"),
        ("format", "{{ '{}'.format(n30) }}", "a format() result would have"),
        ("format_repr", "{{ '{!r}'.format(n30) }}", "a format() field would have"),
        ("percent", "{{ '%s' % n30 }}", "a %-formatted text would have"),
        ("percent_ascii", "{{ '%a' % n30 }}", "a %-formatted text would have"),
        ("string", "{{ n30|string }}", "|string would have"),
        ("pprint", "{{ n30|pprint }}", "|pprint would have"),
        ("escape", "{{ n30|e }}", "|e would have"),
        ("center", "{{ n30|center(3) }}", "|center would have"),
        ("replace", "{{ 'x'|replace('x', n30) }}", "|replace would have"),
        ("join", "{{ ['x', 'y']|join(n30) }}", "|join would have"),
        ("urlencode", "{{ n30|urlencode }}", "|urlencode would have"),
        ("tojson", "{{ n30|tojson }}", "|tojson would have"),
    ]
}


def tricky_values() -> list:
    ns, looped = Namespace(a=1, b="x'y\"z"), Namespace()
    looped["self"] = looped
    texts = ["", "a'b", 'a"b', "a'\"b", "\\", "dòng 1\ndòng 2\t\r", "\x00\x1f\x7f", "\xa0\u200b\u2028", "\U000e0001😀"]
    mapping = {"k": texts, 1: (1,), None: {2.5, True}, (1, "t"): frozenset({"f"})}
    return [
        *texts, mapping, mapping.items(), mapping.keys(), mapping.values(), [mapping, mapping], (texts,), ns, looped,
        [b"\x00b'", 2**1000, -(2**64), 1e300, -0.0, float("nan"), None, False], Cycler(1, 2), [[]] * 5,
    ]


@pytest.mark.parametrize("value", tricky_values(), ids=lambda value: type(value).__name__ if isinstance(value, Cycler) else repr(value))
def test_measuring_a_value_never_counts_fewer_characters_than_str_writes(value):
    """The size checks trust these counts: a value is never longer as text than measured."""
    assert text_size(value) >= len(str(value)) and text_size([value]) >= len(str([value]))
    assert text_size([value]) <= 2 * len(str([value])) + 64  # and not so much more that real prompts are refused


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


# What collection does with the first record: the limit error the suite would get, or None.
CHECK_FIRST = """
import json, sys
from vnllmtest.loaders import Item
from vnllmtest.prompts import limit_error
from vnllmtest.prompt_spec import PromptSpec
item = Item(id="r1", fields={"id": "r1", "question": "abc"}, references=("x",))
spec = PromptSpec.model_validate({"template": sys.argv[1], "limits": {"max_chars": 100_000_000}})
error = limit_error(spec, [item], item, {})
print(json.dumps(error and str(error)))
"""


def test_a_template_that_runs_out_of_memory_within_raised_limits_is_one_suite_error():
    """Three 99-million-item lists are within a raised max_chars but not within 2 GiB: the MemoryError is
    the template's limit error (one suite error at collection), never a PromptError left to every item
    to build again."""
    lists = "".join(f"{{% set l{i} = [''] * 99000000 %}}" for i in range(3)) + "{{ l0|length + l1|length + l2|length }}"
    done = run_limited(["-c", CHECK_FIRST, lists])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == "prompt.template: rendering stopped: Python ran out of memory building the prompt"


def test_the_jinja_internals_the_sandbox_relies_on_are_there_and_used():
    """pyproject pins Jinja2 to the releases that have them (3.1.5 added wrap_str_format): on 3.1.0-3.1.4
    `"{:>999999999}".format(1)` was never checked. The import fails when one is missing."""
    requirement = next(
        line.strip().strip('",') for line in (REPO / "pyproject.toml").read_text("utf-8").splitlines()
        if line.strip().startswith('"jinja2')
    )  # fmt: skip
    assert requirement == "jinja2>=3.1.5,<3.2"
    assert Version("3.1.5") <= Version(jinja2.__version__) < Version("3.2")
    environment = BoundedEnvironment()
    source = environment.compile(environment.parse("{% macro m() %}x{% endmacro %}{% set s %}y{% endset %}"), raw=True)
    assert source.count("environment.bounded_buffer()") == 2  # CodeGenerator.buffer is overridden and called
    with pytest.raises(PromptLimitError, match="a format\\(\\) field would have 2,000,000 characters"):
        render('{{ "{:>2000000}".format(1) }}', {})  # wrap_str_format is called (else: "the prompt grew past")
    with pytest.raises(PromptLimitError, match=r"a value shown with \{\{ \}\} would have 2,000,0\d\d characters"):
        render("{% set n = namespace() %}{% set n.a = 'x' * 999999 %}{% set n.b = n.a %}{{ n }}", {})  # measured
    for hook in ("del jinja2.compiler.CodeGenerator.buffer", "del jinja2.sandbox.SandboxedEnvironment.wrap_str_format"):
        done = subprocess.run(
            [sys.executable, "-c", f"import jinja2.compiler, jinja2.sandbox; {hook}; import vnllmtest.sandbox"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "ImportError: vnllmtest's template sandbox needs Jinja2 3.1.5 or a later 3.1 release" in done.stderr


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


def test_aliases_repeating_a_long_text_are_refused_by_characters_not_only_nodes(tmp_path):
    """Three nodes repeated 1,990 times pass the node bound, but the judge's sections would hold 796 MB of
    text (and the spec is written into reports): aliases may repeat at most a mebibyte of text in all."""
    text = "x" * 400_000
    sees = f"  sees: [&s {{title: t, text: {text}}}, {', '.join(['*s'] * 1990)}]\n"
    path = tmp_path / "suite.yaml"
    path.write_text(BASE + "judge:\n  rubric: answer_quality\n" + sees, encoding="utf-8")
    assert path.stat().st_size < 420_000
    done = run_limited(["-c", LOAD, str(path)])
    error, message, cpu = json.loads(done.stdout)
    third = len("  sees: [&s {title: t, text: }, *s, *s, ") + len(text) + 1  # 3 × 400,010 characters > 1 MiB
    assert error == "SuiteError" and cpu < 5
    assert message == (
        f"{path}:11:{third}: refused: YAML aliases (*s here) repeat more than 1,048,576 characters in all; "
        "write the values out instead"
    )
    path.write_text(BASE + f"x: &t {text}\ny: [*t, *t, *t]\n", encoding="utf-8")  # a text alone, in an unknown key
    error, message, _ = json.loads(run_limited(["-c", LOAD, str(path)]).stdout)
    assert error == "SuiteError" and f"{path}:10:13: refused: YAML aliases (*t here) repeat more than 1,048,576" in message


def test_a_value_in_a_validation_error_is_shown_cut(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("{input: s3}", "{input: " + "x" * 500_000 + "}"), encoding="utf-8")
    done = run_limited(["-c", LOAD, str(path)])
    error, message, _ = json.loads(done.stdout)
    assert error == "SuiteError" and len(message) < 600
    assert "options.input must be one of s3, documents, got 'xxxx" in message and "(500,000 characters in all)" in message


# --- end to end: the suite error at collection, the item error for one record, the judge's sections --------------

LONG_CONTEXT = "Hà Nội " * 200_000  # 1,400,000 characters: past the default limit, a real (if odd) record
RECORDS = [
    {"id": "q1", "context": "Hà Nội là thủ đô.", "question": "Thủ đô?", "answers": {"text": ["Hà Nội"]}},
    {"id": "q2", "context": LONG_CONTEXT, "question": "Thủ đô?", "answers": {"text": ["Hà Nội"]}},
]


def qa_suite(template: str, **prompt: object) -> dict:
    """A QA suite over data/qa.jsonl, scored on f1 and gated at 40, whose prompt is `template` with `prompt`'s
    keys (limits, budget)."""
    return {
        "task": "extractive_qa",
        "dataset": {"source": "data/qa.jsonl"},
        "prompt": {"template": template, **prompt},
        "metrics": ["f1"],
        "gates": [{"metric": "f1", "min": 40}],
    }


def qa_project(records: list[dict] = RECORDS, **suites: dict) -> pytest.MarkDecorator:
    """A project with these suites over `records`, and preds.jsonl answering Hà Nội to each record."""
    answers = {record["id"]: "Hà Nội" for record in records}
    return pytest.mark.project(suites=suites, records={"qa.jsonl": records}, predictions={"preds": answers})


@qa_project(bomb=qa_suite('{{ context }}{{ "x" * 4000000000 }}'), plain=qa_suite("{{ context }}"))
def test_a_template_bomb_is_a_collection_error_naming_suite_template_and_key(project):
    args = ["-m", "pytest", "suites", "--model", "replay:preds.jsonl", "-p", "no:cacheprovider"]
    done = run_limited(args, cwd=project.path)
    assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout[-3000:]
    assert (
        f"{project.path / 'suites' / 'bomb.yaml'}: prompt.template: rendering stopped: a repeated text or list would "
        "have 4,000,000,000 characters, more than 1,000,000; raise prompt.limits.max_chars in the suite if the prompt "
        "really needs more (found rendering the first record, q1, at collection)"
    ) in done.stdout
    assert "suites/bomb.yaml" in done.stdout and "(suite not collected)" in done.stdout


@qa_project(
    qa=qa_suite("{{ context }} {{ question }}"),
    raised=qa_suite("{{ context }} {{ question }}", limits={"max_chars": 2_000_000}),
)
def test_a_record_past_the_limit_is_an_item_error_and_the_suite_key_raises_the_limit(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run] = run_folders(project.path)
    error = run.item("q2", suite="qa")
    assert error["status"] == "error" and error["failure_class"] == "bad_prompt"
    assert error["message"].endswith(
        "record q2: prompt.template: rendering stopped: the prompt grew past 1,000,000 characters; raise "
        "prompt.limits.max_chars in the suite if the prompt really needs more"
    )
    assert run.item("q1", suite="qa")["status"] == "passed"
    raised = run.item("q2", suite="raised")
    assert raised["status"] == "passed" and len(raised["prompt"]) > 1_000_000


JUDGED = {"rubric": "answer_quality", "sees": [{"title": "Trả lời", "text": "{{ output * 3 }}"}]}


@qa_project(judged={**qa_suite("{{ question }}", limits={"max_chars": 1000}), "judge": JUDGED})
def test_a_judge_section_past_the_limit_fails_the_judged_item_naming_the_section(project, replay):
    model = replay({"q1": "Hà Nội", "q2": "x" * 400})
    reply = '{"accuracy": 9, "faithfulness": 9, "coherence": 9}'
    judge = replay({"q1": reply, "q2": reply}, "judge", suite="judged")
    result = project.runpytest("suites", "--model", model, "--judge", judge)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run] = run_folders(project.path)
    failed = run.item("q2")
    assert failed["status"] == "error" and failed["failure_class"] == "judge_failed"
    assert (
        "judge prompt: judge.sees.0.text: rendering stopped: a repeated text or list would have 1,200 characters, "
        "more than 1,000" in failed["message"]
    )
    assert "raise prompt.limits.max_chars" in failed["message"]
    assert run.item("q1")["failure_class"] != "judge_failed"


@qa_project(RECORDS[::-1], qa=qa_suite("{{ context }} {{ question }}"))
def test_a_long_first_record_is_its_own_item_error_not_the_suites(project):
    """Collection renders the first record; when only its size passes the limit (its texts cut short
    render), the suite runs and that record is its item's error, whichever place it has."""
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run] = run_folders(project.path)
    long = run.item("q2", suite="qa")
    assert long["failure_class"] == "bad_prompt" and run.item("q1", suite="qa")["status"] == "passed"
    assert "the prompt grew past 1,000,000 characters" in long["message"]


def budget(tokens: int) -> dict:
    return {"max_tokens": tokens, "field": "context", "policy": "head"}


@qa_project(
    RECORDS[::-1],
    budgeted=qa_suite("{{ context }} {{ question }}", budget=budget(2000)),
    doubled=qa_suite("{{ context }}{{ context }}{{ question }}", budget=budget(100_000)),
)
def test_a_budgeted_field_longer_than_max_chars_is_cut_to_the_budget_first(project):
    """The budget, not the character limit, decides how much of a 1.4-million-character context the prompt
    keeps: the field is cut by characters to 64 per token of the budget before the prompt is rendered and
    measured, and the cut is recorded. Text the template itself makes stays bounded by max_chars."""
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the doubled suite's long record only
    [run] = run_folders(project.path)
    long, short = run.item("q2", suite="budgeted"), run.item("q1", suite="budgeted")
    assert long["status"] == short["status"] == "passed" and short["truncation"] is None
    cut = long["truncation"]
    assert cut["chars_cut"] == len(LONG_CONTEXT) - 127_997  # after the last whole word within 2000 * 64 characters
    assert cut["words_total"] == 400_000
    assert cut["tokens_after"] <= 2000 < cut["tokens_before"] and len(long["prompt"]) == cut["tokens_after"]
    assert long["prompt"].startswith("Hà Nội Hà Nội")
    doubled = run.item("q2", suite="doubled")
    assert doubled["failure_class"] == "bad_prompt" and run.item("q1", suite="doubled")["status"] == "passed"
    assert (
        "the prompt grew past 2,400,000 characters (1,000,000 and the 1,400,000 of the budgeted field)"
        in doubled["message"]
    )
