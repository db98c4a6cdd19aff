"""JUnit XML (`--junitxml`) reads like the run's verdict, parsed the way CI dashboards read it (the test
suite's counts, each test case's outcome element): misses are skipped test cases with their detail, so a run
whose gates pass has no failures; failed gates are failures; --strict-items makes misses failures; item errors
are errors. pytest still sees misses failed: the terminal shows them MISSED and --lf re-selects them. End to end
through pytest with replayed predictions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from support import replay_rows, write_suite

CHOICES = ["A. Sông Hồng", "B. Sông Mã", "C. Sông Cả", "D. Sông Đà"]
RECORDS = [
    {"id": item_id, "question": f"Câu {item_id}: sông nào chảy qua Hà Nội?", "choices": CHOICES, "answer": answer}
    for item_id, answer in zip(["01-0000", "02-0001", "03-0002", "01-0003", "02-0004", "03-0005"], "ABCDAB")
]
IDS = [record["id"] for record in RECORDS]
MISSED = IDS[1:3]  # answered wrong: 4 of 6 right, 66.7 accuracy
WRONG = {"A": "B", "B": "C", "C": "D", "D": "A"}
ANSWERS = {r["id"]: f"Đáp án: {WRONG[r['answer']] if r['id'] in MISSED else r['answer']}" for r in RECORDS}
OUTCOMES = ("failure", "error", "skipped")  # a test case without one of these passed


def suite(gate_min: float) -> dict:
    gates = [{"metric": "accuracy", "min": gate_min}]
    return {"task": "multiple_choice", "scoring": {"mode": "generate"}, "gates": gates}


pytestmark = pytest.mark.project(
    suites={"mc": suite(50)}, records={"mc.jsonl": RECORDS}, predictions={"preds": replay_rows(ANSWERS, model="m")}
)


def run(pytester: pytest.Pytester, *args: str, model: str = "replay:preds.jsonl") -> pytest.RunResult:
    return pytester.runpytest("suites", "--model", model, "--junitxml", "junit.xml", *args)


def junit(pytester: pytest.Pytester) -> tuple[dict[str, int], dict[str, ET.Element]]:
    """The test suite's counts (tests, failures, errors, skipped) and its test cases by name."""
    [suite_element] = ET.parse(pytester.path / "junit.xml").getroot().iter("testsuite")
    counts = {key: int(suite_element.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    return counts, {case.get("name"): case for case in suite_element.iter("testcase")}


def outcome(case: ET.Element) -> ET.Element | None:
    """The element that gives a test case its outcome, or None when it passed."""
    [found] = [child for child in case if child.tag in OUTCOMES] or [None]
    return found


def item(item_id: str, model: str = "m") -> str:
    return f"mc[{model}:{item_id}]"


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_passing_gates_with_misses_show_no_failures_and_each_miss_as_skipped_with_its_detail(project):
    result = run(project)
    assert result.ret == 0
    assert result.parseoutcomes() == {"passed": 4, "missed": 2}  # the terminal still says MISSED
    counts, cases = junit(project)
    assert counts == {"tests": 7, "failures": 0, "errors": 0, "skipped": 2}  # six items and the gate
    for item_id in MISSED:
        skipped = outcome(cases[item(item_id)])
        assert (skipped.tag, skipped.get("type")) == ("skipped", "vnllmtest.missed")
        assert skipped.get("message").startswith(f"MISSED (wrong) mc [m] item {item_id}")
        assert '\nreference: ["' in skipped.get("message")
        assert "\nprompt:\n" in skipped.text, "the whole detail is the element's text"
        assert properties(cases[item(item_id)]) == {"status": "missed", "metric.accuracy": "0.0"}
    passed = [item(i) for i in IDS if i not in MISSED] + ["gate[m:accuracy >= 50]"]
    assert [outcome(cases[name]) for name in passed] == [None] * 5
    assert properties(cases[item(IDS[0])])["status"] == "passed"


def test_a_failing_gate_is_the_failure_and_names_the_gate(project):
    write_suite(project.path, "mc", suite(90))
    assert run(project).ret == 1
    counts, cases = junit(project)
    assert (counts["failures"], counts["skipped"]) == (1, 2)
    failure = outcome(cases["gate[m:accuracy >= 90]"])
    assert failure.tag == "failure" and failure.get("message").startswith("gate failed: accuracy >= 90: ")
    assert [outcome(cases[item(i)]).tag for i in MISSED] == ["skipped", "skipped"]


def test_strict_items_makes_the_misses_failures(project):
    assert run(project, "--strict-items").ret == 1
    counts, cases = junit(project)
    assert counts == {"tests": 7, "failures": 2, "errors": 0, "skipped": 0}
    for item_id in MISSED:
        failure = outcome(cases[item(item_id)])
        assert failure.tag == "failure" and failure.get("message").startswith("MISSED (wrong)")
    assert outcome(cases["gate[m:accuracy >= 50]"]) is None


def test_an_errored_item_is_an_error_not_a_failure(project, replay):
    partial = replay({i: a for i, a in ANSWERS.items() if i != IDS[5]}, name="partial", model="m")
    result = run(project, model=partial)
    assert result.ret == 1
    assert result.parseoutcomes() == {"passed": 3, "missed": 2, "failed": 1}
    counts, cases = junit(project)
    assert counts == {"tests": 7, "failures": 0, "errors": 1, "skipped": 2}
    error = outcome(cases[item(IDS[5])])
    assert (error.tag, error.get("type")) == ("error", "vnllmtest.error")
    assert f"has no prediction for id '{IDS[5]}'" in error.get("message")


def test_a_model_that_cannot_load_makes_every_item_an_error(project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # offline (conftest.py), with nothing cached
    assert run(project, model="nobody/none").ret == 1
    counts, cases = junit(project)
    assert (counts["errors"], counts["failures"]) == (6, 1)  # the gate fails: no item was scored
    assert outcome(cases["gate[none:accuracy >= 50]"]).get("message").startswith("gate failed: accuracy >= 50: ")
    assert {outcome(cases[item(i, "none")]).tag for i in IDS} == {"error"}
    assert {properties(cases[item(i, "none")])["status"] for i in IDS} == {"error"}


def test_last_failed_reruns_exactly_the_missed_and_errored_items(project, replay):
    partial = replay({i: a for i, a in ANSWERS.items() if i != IDS[5]}, name="partial", model="m")
    run(project, model=partial)
    again = run(project, "--lf", model=partial)
    assert again.parseoutcomes() == {"missed": 2, "failed": 1}
    _, cases = junit(project)
    assert {name for name in cases if name.startswith("mc[")} == {item(i) for i in [*MISSED, IDS[5]]}


def test_under_xdist_the_junit_outcomes_are_the_same(project):
    run(project)
    single = junit(project)
    assert run(project, "-n", "2").ret == 0
    counts, cases = junit(project)
    assert counts == single[0] == {"tests": 7, "failures": 0, "errors": 0, "skipped": 2}
    tags = [{name: getattr(outcome(case), "tag", None) for name, case in found.items()} for found in (single[1], cases)]
    assert tags[0] == tags[1]
    assert [tags[1][item(i)] for i in MISSED] == ["skipped", "skipped"]
