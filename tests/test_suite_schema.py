"""Suite files: validation with errors that name the file, the line, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnllmtest.suite import SuiteError, is_suite_file, load_suite

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
    assert suite.spec.dataset.sample and suite.resolve(suite.spec.dataset.sample).exists()


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
    assert "YAML syntax error" in message


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
