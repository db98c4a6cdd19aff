"""Bad and hostile suite files, end to end through pytest: invalid values are collection errors naming the
file, line and key; a template naming a missing field errors each item; YAML tags and templates never run
code; record text is never read as a template."""

from __future__ import annotations

import re

import pytest
from support import run_folders, suite_text, write_suite

RECORDS = [
    {"id": "q1", "context": "Hà Nội là thủ đô.", "question": "Thủ đô?", "answers": {"text": ["Hà Nội"]}},
    {"id": "q2", "context": "{{ 7 * 7 }} {% for x in range(3) %}x{% endfor %}", "question": "{{ lipsum }}?"},
]


def suite(**fields: object) -> dict:
    """A QA suite over data/qa.jsonl gated on F1, with `fields` on top."""
    gates = [{"metric": "f1", "min": 40}]
    return {"task": "extractive_qa", "dataset": {"source": "data/qa.jsonl"}, "gates": gates, **fields}


pytestmark = pytest.mark.project(
    records={"qa.jsonl": RECORDS}, predictions={"preds": {r["id"]: "Hà Nội" for r in RECORDS}}
)

INVALID = {  # suite name: (its fields, the problem the collection error names)
    "wrong_scalar": (
        {"generation": {"max_new_tokens": "many"}},
        "line 9: generation.max_new_tokens: Input should be a valid integer, unable to parse string as an integer "
        "(got 'many')",
    ),
    "wrong_list": ({"metrics": "f1"}, "line 6: metrics: Input should be a valid list"),
    "item_pass_in_points": (
        {"item_pass": {"metric": "f1", "min": 50}},
        "line 7: item_pass.min: Input should be less than or equal to 1 (got 50)",
    ),
    "judge_gate_in_points": (
        {
            "judge": {"rubric": "answer_quality", "sees": [{"title": "Trả lời", "text": "{{ output }}"}]},
            "gates": [{"metric": "judge_overall", "min": 60}],
        },
        "gates.0: 60 is outside the range of judge_overall, the rubric's scale 1-10 (judge scores are not points)",
    ),
}


def test_invalid_values_are_collection_errors_naming_file_line_and_key(project):
    paths = {name: write_suite(project.path, name, suite(**fields)) for name, (fields, _) in INVALID.items()}
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    for name, (_, problem) in INVALID.items():
        result.stdout.fnmatch_lines([f"*{paths[name]}: invalid suite (1 problem):", f"*{problem}*"])
        result.stdout.fnmatch_lines([f"suites/{name}.yaml*(suite not collected)*FAIL (see collection error)"])


def test_a_template_naming_a_field_no_record_has_is_a_collection_error_with_the_fix(project):
    write_suite(project.path, "qa", suite(prompt={"template": "{{ context }} {{ hint }}"}))
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*suites/qa.yaml: prompt.template uses 'hint', which no record of */qa.jsonl has; the records have "
            "fields context, id, question, title. To fix: use one of those fields in the template, or add the field "
            "to the data.",
            "suites/qa.yaml*(suite not collected)*FAIL (see collection error)",
        ]
    )


PYTHON_TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/object:subprocess.Popen {{args: [touch, '{marker}']}}",
    "!!python/name:os.system",
    "!!python/module:os",
]


def test_python_yaml_tags_are_refused_and_never_run(project):
    marker = project.path / "tag-ran"
    for number, tag in enumerate(PYTHON_TAGS):
        tagged = f"description: {tag.format(marker=marker)}\nname: tagged"
        text = suite_text(f"tagged{number}", **suite()).replace("name: tagged", tagged)
        write_suite(project.path, f"tagged{number}", text)
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    for number, tag in enumerate(PYTHON_TAGS):
        name = tag.split()[0].removeprefix("!!")
        result.stdout.fnmatch_lines(
            [f"*tagged{number}.yaml:2:*: unsupported YAML value: could not determine a constructor for the tag '*{name}'*"]
        )
    (project.path / "aliases.yaml").write_text(f"x: !!python/object/apply:os.system ['touch {marker}']\n", "utf-8")
    usage = project.runpytest("--aliases", "aliases.yaml", "--model", "replay:preds.jsonl")
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    usage.stderr.fnmatch_lines(["*aliases.yaml: cannot read model aliases (could not determine a constructor*"])
    assert not marker.exists()


HOSTILE_TEMPLATES = [
    "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(question) }}",
    "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
]


def test_templates_cannot_reach_python_and_record_text_is_never_a_template(project):
    marker = project.path / "template-ran"
    for number, template in enumerate(HOSTILE_TEMPLATES):
        hostile = template.replace("MARKER", str(marker))
        write_suite(project.path, f"hostile{number}", suite(prompt={"template": hostile}))
    write_suite(project.path, "plain", suite())
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run] = run_folders(project.path)
    items = run.items
    hostile = [item for item in items if item["suite"].startswith("hostile")]
    assert len(hostile) == 2 * len(HOSTILE_TEMPLATES)
    assert all(item["failure_class"] == "bad_prompt" and item["prompt"] is None for item in hostile)
    assert all(re.search(r"prompt template: access to attribute .* is unsafe", item["message"]) for item in hostile)
    plain = {item["id"]: item for item in items if item["suite"] == "plain"}
    assert plain["q2"]["prompt"] == RECORDS[1]["context"] + " " + RECORDS[1]["question"]
    assert not marker.exists()
