"""Suite files: validation with errors that name the file, the line, the key and what was expected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vnllmtest.suite import SuiteError, load_suite
from vnllmtest.suite_marker import is_suite_file

REPO_SUITES = Path(__file__).resolve().parents[1] / "suites"

VALID = """vnllmtest: 1
name: demo
task: extractive_qa
dataset:
  adapter: squad_v2
  source: data.jsonl
  sampling: {fraction: 0.5, seed: 3}
prompt:
  template: "{{ context }} {{ question }}"
metrics: [exact_match, f1]
item_pass: {metric: f1, min: 0.5}
gates:
  - {metric: f1, min: 30}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, text))
    return str(caught.value)


@pytest.mark.parametrize("name", ["vmlu", "visquad2", "vims", "vtsnlp"])
def test_bundled_suites_are_valid(name):
    suite = load_suite(REPO_SUITES / f"{name}.yaml")
    assert suite.name == name
    assert suite.spec.dataset.sample and (suite.path.parent / suite.spec.dataset.sample).exists()


def test_valid_suite_loads_with_defaults(tmp_path):
    suite = load_suite(write(tmp_path, VALID))
    assert suite.spec.scoring.mode == "generate"
    assert suite.spec.generation.max_new_tokens == 64
    assert suite.spec.dataset.sampling.fraction == 0.5
    assert len(suite.sha256) == 64


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    message = error_of(tmp_path, VALID.replace("metrics: [exact_match, f1]", "metrics: [exact_match, f1"))
    assert "suite.yaml:11:" in message and "YAML syntax error" in message


def test_unknown_key_lists_the_allowed_keys(tmp_path):
    message = error_of(tmp_path, VALID.replace("  source: data.jsonl", "  sourse: data.jsonl"))
    assert "line 6: dataset.sourse: unknown key; expected one of: adapter, local, options, revision, sample" in message


def test_wrong_type_and_out_of_range(tmp_path):
    message = error_of(tmp_path, VALID.replace("fraction: 0.5", "fraction: 1.5"))
    assert "line 7: dataset.sampling.fraction: Input should be less than or equal to 1 (got 1.5)" in message
    message = error_of(tmp_path, VALID.replace("  - {metric: f1, min: 30}", "  - {metric: f1, min: 130}"))
    assert "gates.0.min: Input should be less than or equal to 100 (got 130)" in message


def test_missing_required_key(tmp_path):
    message = error_of(tmp_path, VALID.replace("item_pass: {metric: f1, min: 0.5}\n", ""))
    assert "item_pass: required key is missing" in message


def test_inconsistent_metrics_are_explained(tmp_path):
    message = error_of(tmp_path, VALID.replace("metrics: [exact_match, f1]", "metrics: [accuracy]"))
    assert "metric 'accuracy' does not fit task 'extractive_qa'" in message
    message = error_of(tmp_path, VALID.replace("gates:\n  - {metric: f1", "gates:\n  - {metric: rouge_l"))
    assert "'rouge_l' is used by item_pass or gates but not reported; this suite reports exact_match, f1" in message


def test_template_syntax_error_names_the_template_line(tmp_path):
    message = error_of(tmp_path, VALID.replace('"{{ context }} {{ question }}"', '"{{ context }} {% if %}"'))
    assert "suite.yaml:9: prompt.template: Jinja template syntax error on line 1 of the template" in message


def test_python_tags_are_rejected(tmp_path):
    message = error_of(tmp_path, VALID.replace("name: demo", "name: !!python/object/apply:os.system ['true']"))
    assert "suite.yaml:2:7: unsupported YAML value: could not determine a constructor for the tag" in message
    assert "yaml.safe_load" in message


def test_only_marked_yaml_files_are_suites(tmp_path):
    assert is_suite_file(write(tmp_path, VALID))
    other = tmp_path / "config.yaml"
    other.write_text("name: something\nvalues: [1, 2]\n", encoding="utf-8")
    assert not is_suite_file(other)
    assert not is_suite_file(tmp_path / "suite.json")


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        ("{count: 10, proportions: {HasAns: 0.9, NoAns: 0.1}}", "'proportions' needs 'stratify'"),
        ("{count: 10, stratify: answerable, proportions: {HasAns: 0.9, NoAns: 0.2}}", "must add up to 1, got 1.1"),
        ("{count: 10, stratify: answerable, proportions: {HasAns: 1.5}}", "every proportion must lie in (0, 1]"),
    ],
)
def test_sampling_proportions_are_checked(tmp_path, sampling, expected):
    message = error_of(tmp_path, VALID.replace("{fraction: 0.5, seed: 3}", sampling))
    assert "line 7: dataset.sampling:" in message and expected in message


def test_adapter_options_are_checked(tmp_path):
    unknown = error_of(tmp_path, VALID.replace("  source: data.jsonl\n", "  source: data.jsonl\n  options: {input: s3}\n"))
    assert "dataset: Value error, adapter 'squad_v2' has no option 'input' (options: none)" in unknown
    vims = VALID.replace("adapter: squad_v2", "adapter: vims").replace("task: extractive_qa", "task: summarization")
    vims = vims.replace("[exact_match, f1]", "[rouge_l, f1]")
    wrong = error_of(tmp_path, vims.replace("  source: data.jsonl\n", "  source: data.jsonl\n  options: {input: all}\n"))
    assert "options.input must be one of s3, documents, got 'all'" in wrong


def test_both_scoring_modes_need_multiple_choice_and_add_their_metrics(tmp_path):
    assert "scoring.mode 'both' needs task 'multiple_choice'" in error_of(tmp_path, VALID + "scoring: {mode: both}\n")
    choice = (REPO_SUITES / "vmlu.yaml").read_text(encoding="utf-8")
    suite = load_suite(write(tmp_path, choice))
    assert suite.spec.reported_metrics == ["accuracy", "accuracy_loglik", "mode_agreement"]
    single = choice.replace("mode: both", "mode: loglikelihood").replace("[accuracy]", "[accuracy_loglik, mode_agreement]")
    single = single.replace("metric: accuracy,", "metric: accuracy_loglik,")
    assert "metric 'mode_agreement' needs scoring.mode 'both', not 'loglikelihood'" in error_of(tmp_path, single)
    loglik = choice.replace("mode: both", "mode: loglikelihood")
    assert "metric 'accuracy' needs scoring.mode 'generate' or 'both', not 'loglikelihood'" in error_of(tmp_path, loglik)
    generate = choice.replace("mode: both", "mode: generate").replace("[accuracy]", "[accuracy_loglik]")
    assert "metric 'accuracy_loglik' needs scoring.mode 'loglikelihood' or 'both'" in error_of(tmp_path, generate)
    only_generate = load_suite(write(tmp_path, choice.replace("mode: both", "mode: generate")))
    assert only_generate.spec.reported_metrics == ["accuracy"]
    gated = choice.replace("{metric: accuracy, min: 25, bound: ci_high}", "{metric: mode_agreement, min: 50}")
    assert load_suite(write(tmp_path, gated)).spec.gates[0].metric == "mode_agreement"


def test_label_tokens_default_to_either_spelling_and_are_validated(tmp_path):
    choice = (REPO_SUITES / "vmlu.yaml").read_text(encoding="utf-8")
    assert load_suite(write(tmp_path, choice)).spec.scoring.label_tokens == "either"
    spaced = load_suite(write(tmp_path, choice.replace("  mode: both\n", "  mode: both\n  label_tokens: spaced\n")))
    assert spaced.spec.scoring.label_tokens == "spaced"
    wrong = error_of(tmp_path, choice.replace("  mode: both\n", "  mode: both\n  label_tokens: space\n"))
    assert "scoring.label_tokens: Input should be 'either', 'spaced' or 'bare'" in wrong


def test_prompt_budget_is_validated(tmp_path):
    text = VALID.replace('  template: "{{ context }} {{ question }}"\n', '  template: "{{ context }}"\n  budget: {max_tokens: 0, field: context, policy: tail}\n')
    message = error_of(tmp_path, text)
    assert "prompt.budget.max_tokens: Input should be greater than or equal to 1" in message
    assert "prompt.budget.policy: Input should be 'proportional' or 'head'" in message


JUDGED = VALID.replace("gates:\n", """judge:
  rubric: answer_quality
  sees:
    - {title: Câu hỏi, text: "{{ question }}"}
    - {title: Trả lời, text: "{{ output }}"}
  pass_min: 6
gates:
""")


def test_judge_blocks_are_validated(tmp_path):
    suite = load_suite(write(tmp_path, JUDGED + "  - {metric: judge_overall, min: 6, bound: ci_low}\n"))
    assert suite.spec.reported_metrics[-5:] == [
        "judge_overall", "judge_accuracy", "judge_faithfulness", "judge_coherence", "verdict_coverage"
    ]
    assert "unknown rubric 'tone'; packaged rubrics: answer_quality, summary_quality, vims_published" in error_of(
        tmp_path, JUDGED.replace("rubric: answer_quality", "rubric: tone")
    )
    assert "pass_min 12 is outside the rubric's scale 1-10" in error_of(tmp_path, JUDGED.replace("pass_min: 6", "pass_min: 12"))
    inline = JUDGED.replace("rubric: answer_quality", "rubric: {criteria: [{name: tone}]}")
    assert "rubric 'inline': criterion 1 needs 'name' and 'description'" in error_of(tmp_path, inline)
    broken = JUDGED.replace('text: "{{ output }}"', 'text: "{{ output }"')
    assert "judge.sees.1.text: Jinja template syntax error" in error_of(tmp_path, broken)
    unknown = error_of(tmp_path, VALID + "  - {metric: judge_overall, min: 6}\n")
    assert "'judge_overall' is used by item_pass or gates but not reported; this suite reports exact_match, f1" in unknown


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ("{metric: f1, min: 30, max_drop: 2}", "give 'min' and/or 'max' (an absolute gate) or 'max_drop'"),
        ("{metric: f1}", "give 'min' and/or 'max' (an absolute gate) or 'max_drop'"),
        ("{metric: f1, min: 30, significance: 0.05}", "'significance' needs 'max_drop'"),
        ("{metric: f1, max_drop: 2, significance: 1.5}", "gates.0.significance: Input should be less than 1"),
        ("{metric: f1, max_drop: -1}", "gates.0.max_drop: Input should be greater than or equal to 0"),
    ],
)
def test_baseline_gates_are_validated(tmp_path, gate, expected):
    message = error_of(tmp_path, VALID.replace("{metric: f1, min: 30}", gate))
    assert "line 13" in message and expected in message


def test_a_baseline_gate_and_a_cluster_key_load(tmp_path):
    text = VALID.replace("{metric: f1, min: 30}", "{metric: f1, max_drop: 2, significance: 0.05, bound: ci_low}")
    spec = load_suite(write(tmp_path, text + "cluster_by: context\n")).spec
    assert spec.gates[0].relative and spec.gates[0].max_drop == 2 and spec.cluster_by == "context"


# --- hostile suite files: bounded reading, exact places, no silent surprises -------------------------------------


def test_ordinary_anchors_aliases_and_merge_keys_still_load(tmp_path):
    text = VALID.replace("item_pass: {metric: f1, min: 0.5}", "item_pass:\n  <<: &pass {metric: f1}\n  min: 0.5")
    suite = load_suite(write(tmp_path, text.replace("  - {metric: f1, min: 30}", "  - &gate {metric: f1, min: 30}\n  - *gate")))
    assert suite.spec.item_pass.metric == "f1" and suite.spec.gates[0] == suite.spec.gates[1]


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    message = error_of(tmp_path, VALID + "metrics: [f1]\n")
    assert message.endswith(
        "suite.yaml:14:1: key 'metrics' appears twice in this mapping (first on line 10); YAML would silently keep only the last"
    )
    nested = error_of(tmp_path, VALID.replace("  source: data.jsonl\n", "  source: data.jsonl\n  source: other.jsonl\n"))
    assert "suite.yaml:7:3: key 'source' appears twice in this mapping (first on line 6)" in nested


def test_long_keys_and_values_in_messages_are_cut_in_the_middle_and_counted(tmp_path):
    """Keys, values and YAML problems from the file are shown by their start and end around a counted cut,
    however long they are."""
    key = "k" * 300 + "END"
    unknown = error_of(tmp_path, VALID + f"{key}: 1\n")
    assert f"line 14: {'k' * 60}[... 183 characters ...]{'k' * 57}END: unknown key; expected one of:" in unknown
    twice = error_of(tmp_path, VALID + f"{key}: 1\n{key}: 2\n")
    assert f"suite.yaml:15:1: key '{'k' * 40}[... 223 characters ...]{'k' * 37}END' appears twice" in twice
    value = error_of(tmp_path, VALID.replace("task: extractive_qa", "task: " + "t" * 5000))
    assert "line 3: task: Input should be 'multiple_choice', " in value
    assert value.endswith(f"(got '{'t' * 57}...{'t' * 58}' (5,000 characters in all))")
    items = ", ".join(["1"] * 100)  # 101 nodes, repeated 100 times
    anchor = error_of(tmp_path, VALID + f"a: &{'x' * 200} [{items}]\nb: [" + ", ".join(["*" + "x" * 200] * 100) + "]\n")
    assert f"refused: YAML aliases (*{'x' * 20}[... 160 characters ...]{'x' * 20} here) repeat more than 10,000" in anchor


def test_deep_nesting_is_refused_before_python_runs_out_of_recursion(tmp_path):
    for nested in ("[" * 10_000 + "]" * 10_000, "{a: " * 5_000 + "1" + "}" * 5_000):
        message = error_of(tmp_path, VALID + f"description: {nested}\n")
        assert "suite.yaml:14:" in message and "refused: mappings and lists nest deeper than 64 levels" in message


def test_a_suite_file_over_a_mebibyte_is_refused_and_large_yaml_is_never_read_whole(tmp_path):
    message = error_of(tmp_path, VALID + "description: " + "x" * (1 << 20) + "\n")
    assert message.endswith("suite.yaml: the suite file is larger than 1,048,576 bytes; suites are a few kilobytes")
    data = tmp_path / "data.yaml"
    data.write_text("x: " + "y" * (2 << 20) + "\nvnllmtest: 1\n", encoding="utf-8")
    assert not is_suite_file(data)  # only the first MiB is read, and a suite's marker is always there


def test_a_fifo_named_like_a_suite_is_not_opened(tmp_path):
    fifo = tmp_path / "suite.yaml"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    assert not is_suite_file(fifo)


def test_values_python_cannot_build_are_errors_at_their_line(tmp_path):
    digits = error_of(tmp_path, VALID + "generation: {max_new_tokens: " + "9" * 5000 + "}\n")
    assert "suite.yaml:14:30: unsupported YAML value: cannot read this value (Exceeds the limit (4300 digits)" in digits
    date = error_of(tmp_path, VALID + "description: 2001-02-30\n")
    assert "suite.yaml:14:14: unsupported YAML value: cannot read this value (day is out of range for month)" in date
    huge = error_of(tmp_path, VALID + "generation: {max_new_tokens: 0x" + "f" * 100_000 + "}\n")
    assert "generation.max_new_tokens: Input should be less than or equal to 1048576 (got a 400,000-bit number)" in huge


def test_control_characters_and_invalid_utf8_name_the_line(tmp_path):
    nul = error_of(tmp_path, VALID.replace("name: demo", "name: de\x00mo"))
    assert nul.endswith("suite.yaml:2: YAML syntax error: control character U+0000 is not allowed")
    path = tmp_path / "suite.yaml"
    path.write_bytes(VALID.encode().replace(b"task: extractive_qa", b"task: extractive\xff"))
    with pytest.raises(SuiteError, match=r"suite\.yaml:3: not valid UTF-8 \(byte \d+\)"):
        load_suite(path)


@pytest.mark.parametrize(
    ("text", "got"),
    [("- vnllmtest: 1\n", "got a list"), ("vnllmtest\n", "got a str"), ("", "got nothing (the file is empty)")],
)
def test_a_suite_that_is_not_a_mapping_says_what_it_is(tmp_path, text, got):
    assert error_of(tmp_path, text).endswith(f"a suite must be a mapping of keys (vnllmtest: 1, name: …), {got}")


def test_a_suite_saved_with_a_byte_order_mark_is_still_collected(tmp_path):
    path = write(tmp_path, "\ufeff" + VALID)  # Windows editors add one; the suite was once silently skipped
    assert is_suite_file(path) and load_suite(path).name == "demo"


def test_token_counts_few_shot_and_stop_lists_are_bounded(tmp_path):
    tokens = error_of(tmp_path, VALID + "generation: {max_new_tokens: 1000000000000}\n")
    assert "line 14: generation.max_new_tokens: Input should be less than or equal to 1048576 (got 1000000000000)" in tokens
    shots = error_of(tmp_path, VALID.replace('  template: "', '  fewshot: {k: 1000000, target: x}\n  template: "'))
    assert "prompt.fewshot.k: Input should be less than or equal to 100 (got 1000000)" in shots
    stops = error_of(tmp_path, VALID + f"generation: {{stop: [{', '.join(['x'] * 1000)}]}}\n")
    assert "generation.stop: List should have at most 64 items after validation, not 1000" in stops


def test_prompt_limits_are_validated(tmp_path):
    limits = VALID.replace('  template: "', '  limits: {max_chars: 10, max_seconds: .nan}\n  template: "')
    message = error_of(tmp_path, limits)
    assert "prompt.limits.max_chars: Input should be greater than or equal to 1000 (got 10)" in message
    assert "prompt.limits.max_seconds: Input should be a finite number (got nan)" in message
    raised = VALID.replace('  template: "', '  limits: {max_chars: 5000000, max_seconds: 30}\n  template: "')
    assert load_suite(write(tmp_path, raised)).spec.prompt.limits.max_chars == 5_000_000


def test_many_problems_are_listed_up_to_twenty(tmp_path):
    message = error_of(tmp_path, VALID.replace("[exact_match, f1]", "[" + ", ".join(["bad"] * 50_000) + "]"))
    assert "invalid suite (50000 problems)" in message and message.endswith("… and 49980 more problems")
    assert len(message.splitlines()) == 22


@pytest.mark.parametrize(
    "tag", ["{% include '/etc/passwd' %}", "{% import 'x.j2' as x %}", "{% from 'x.j2' import y %}", "{% extends 'x' %}"]
)
def test_templates_cannot_include_import_or_extend(tmp_path, tag):
    message = error_of(tmp_path, VALID.replace("{{ context }} {{ question }}", tag))
    assert message.endswith(
        "suite.yaml:9: prompt.template: Jinja template syntax error on line 1 of the template: suite templates "
        "cannot include, import or extend other templates"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{% for i in x %}" * 30 + "{% endfor %}" * 30, "SyntaxError: too many statically nested blocks"),
        ("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}", "RecursionError"),
        ("{{ " + "9" * 5000 + " }}", "ValueError: Exceeds the limit (4300 digits)"),
    ],
)
def test_a_template_python_cannot_compile_is_a_suite_error(tmp_path, template, problem):
    message = error_of(tmp_path, VALID.replace("{{ context }} {{ question }}", template))
    assert f"suite.yaml:9: prompt.template: the template cannot be compiled ({problem}" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[exact_match, f1]", "[exact_match, judge_score]", "line 10: metrics.1: Value error, 'judge_score' comes with"),
        ("{metric: f1, min: 0.5}", "{metric: judge_overall, min: 0.5}", "line 11: item_pass.metric: Value error, 'judge_"),
        ("[exact_match, f1]", "[exact_match, f2]", "line 10: metrics.1: Value error, unknown metric 'f2'; a suite may"),
        ("adapter: squad_v2", "adapter: squad", "line 5: dataset.adapter: Value error, unknown dataset adapter 'squad'"),
        ("[exact_match, f1]", "[exact_match, accuracy]", "metric 'accuracy' does not fit task 'extractive_qa'"),
    ],
)
def test_names_from_the_registries_are_checked_where_they_are_written(tmp_path, old, new, expected):
    message = error_of(tmp_path, VALID.replace(old, new))
    assert expected in message, message
    assert "verdict_coverage" not in message.partition("may list")[2]  # judge metrics are not offered
