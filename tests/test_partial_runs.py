"""A run of part of a suite never passes or fails a gate as if it were the whole suite, and gates come
from the suite as collected. End to end through pytest with replayed predictions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from support import SUMMARY_JUDGE, read_run, replay_rows, write_jsonl, write_suite

# Ten multiple-choice questions of our own; the model "m" gets eight right (80.0 accuracy).
RECORDS = [
    {
        "id": f"{subject}-{n:04d}",
        "question": f"Câu {n}: thủ đô của nước nào nằm bên sông {river}?",
        "choices": ["A. Việt Nam", "B. Lào", "C. Campuchia", "D. Thái Lan"],
        "answer": answer,
    }
    for n, (subject, river, answer) in enumerate(
        [
            ("01", "Hồng", "A"),
            ("01", "Mê Kông", "B"),
            ("02", "Tonlé Sap", "C"),
            ("02", "Chao Phraya", "D"),
            ("03", "Hồng", "A"),
            ("03", "Mê Kông", "B"),
            ("04", "Tonlé Sap", "C"),
            ("04", "Chao Phraya", "D"),
            ("05", "Hồng", "A"),
            ("05", "Mê Kông", "B"),
        ]
    )
]
IDS = [record["id"] for record in RECORDS]
MISSED = {IDS[1], IDS[6]}  # answered wrong
ANSWERS = {
    r["id"]: ("Đáp án: A" if r["answer"] != "A" else "Đáp án: B") if r["id"] in MISSED else f"Đáp án: {r['answer']}"
    for r in RECORDS
}
SUBSET_CAUSE = "a subset chosen by -k, -m, --lf, --deselect or node ids"


def suite(gate_min: float = 60, *extra_gates: dict, **dataset: object) -> dict:
    """The mc suite, its gate at `gate_min` (and `extra_gates`); `dataset` adds keys to its dataset block."""
    gates = [{"metric": "accuracy", "min": gate_min}, *extra_gates]
    return {"task": "multiple_choice", "dataset": dataset, "scoring": {"mode": "generate"}, "gates": gates}


pytestmark = pytest.mark.project(
    suites={"mc": suite()}, records={"mc.jsonl": RECORDS}, predictions={"preds": replay_rows(ANSWERS, model="m")}
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--model", "replay:preds.jsonl", *args)


def the_gate(pytester: pytest.Pytester) -> dict:
    """The newest run's gate, its only one."""
    [gate] = read_run(pytester.path).gates
    return gate


def nodeid(item_id: str) -> str:
    return f"suites/mc.yaml::mc[m:{item_id}]"


def test_a_whole_run_evaluates_its_gates_and_says_so_everywhere(project):
    result = run(project, "suites")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["mc*m*10*8/2/0*accuracy >= 60*80.0 [[]*PASS", "vnllmtest gates: All gates passed."])
    report = read_run(project.path)
    document = report.summary
    assert document["gates_passed"] is True and document["gates_evaluated"] is True
    assert document["gates_verdict"] == "All gates passed."
    assert document["results"][0]["items"] == document["results"][0]["suite_items"] == 10
    [gate] = report.gates
    assert (gate["state"], gate["passed"], gate["reason"], gate["value"]) == ("passed", True, "", 80.0)
    assert "**All gates passed.**" in report.markdown
    page = report.html
    assert '<p class="banner ok" id="gates-verdict">All gates passed.</p>' in page


def test_k_on_right_answers_does_not_pass_a_failing_gate(project):
    write_suite(project.path, "mc", suite(gate_min=90))  # the whole suite scores 80: the gate fails
    assert run(project, "suites").ret == 1
    result = run(project, "suites", "-k", f"{IDS[0]} or {IDS[2]}")
    assert result.ret == 0, "a subset decides no gate; without --require-gates only errors fail the run"
    assert result.parseoutcomes() == {"passed": 2, "deselected": 8}
    reason = f"2 of 10 items ran; {SUBSET_CAUSE}"
    result.stdout.fnmatch_lines(
        [
            f"mc*m*2 of 10*accuracy >= 90*100.0 [[]*NOT EVALUATED ({reason})",
            "vnllmtest gates: No gate failed, but 0 of 1 passed: 1 not evaluated (the run covered part of a suite).",
        ]
    )
    report = read_run(project.path)
    document = report.summary
    assert document["gates_passed"] is True and document["gates_evaluated"] is False
    assert document["run"]["complete"] is True
    [gate] = report.gates
    assert (gate["state"], gate["passed"], gate["reason"]) == ("not_evaluated", False, reason)
    assert gate["value"] == 100.0, "what the subset measured is still shown"
    markdown = report.markdown
    assert f"| mc | m | accuracy >= 90 | 100.0 | 100.0 [100.0, 100.0] | not evaluated ({reason}) |" in markdown
    page = report.html
    assert 'class="banner warn" id="gates-verdict"' in page and 'tr class="not-evaluated"' in page
    assert "All gates passed" not in page


def test_last_failed_on_the_misses_does_not_fail_a_passing_gate(project):
    assert run(project, "suites").ret == 0
    again = run(project, "suites", "--lf")
    assert again.parseoutcomes() == {"missed": 2}  # --lf collects only the two misses
    assert again.ret == 0
    gate = the_gate(project)
    assert (gate["state"], gate["value"]) == ("not_evaluated", 0.0)
    assert gate["reason"] == f"2 of 10 items ran; {SUBSET_CAUSE}"
    required = run(project, "suites", "--lf", "--require-gates")
    assert required.ret == 1
    required.stdout.fnmatch_lines(
        [
            "*accuracy >= 60*FAIL (not evaluated, which --require-gates forbids: 2 of 10 items ran; *)",
            "vnllmtest gates: Gates not passed: 1 of 1 gates not evaluated, which --require-gates forbids.",
        ]
    )
    document = read_run(project.path).summary
    assert document["gates_passed"] is False and document["gates_evaluated"] is False
    assert document["run"]["require_gates"] is True
    assert document["manifest"]["options"]["require_gates"] is True


def test_require_gates_passes_a_whole_run_whose_gates_pass(project):
    result = run(project, "suites", "--require-gates")
    assert result.ret == 0
    assert read_run(project.path).summary["gates_passed"] is True


def test_deselect_one_item_leaves_the_gates_not_evaluated(project):
    result = run(project, "suites", "--deselect", nodeid(IDS[3]))
    assert result.parseoutcomes() == {"passed": 7, "missed": 2, "deselected": 1}
    gate = the_gate(project)
    assert gate["state"] == "not_evaluated" and gate["reason"] == f"9 of 10 items ran; {SUBSET_CAUSE}"


@pytest.mark.parametrize(
    ("limit", "state", "reason"),
    [
        ("3", "not_evaluated", "3 of 10 items ran; --limit 3"),
        ("9", "not_evaluated", "9 of 10 items ran; --limit 9"),
        ("10", "passed", ""),
        ("50", "passed", ""),
    ],
)
def test_limit_below_the_suite_size_leaves_the_gates_not_evaluated(project, limit, state, reason):
    assert run(project, "suites", "--limit", limit).ret == 0
    document = read_run(project.path).summary
    gate = the_gate(project)
    assert (gate["state"], gate["reason"]) == (state, reason)
    assert document["results"][0]["suite_items"] == 10
    assert document["gates_evaluated"] is (state == "passed")


def test_limit_and_k_together_name_both_causes(project):
    run(project, "suites", "--limit", "4")
    chosen = [item["id"] for item in read_run(project.path).items]
    run(project, "suites", "--limit", "4", "-k", f"not {chosen[0]}")
    assert the_gate(project)["reason"] == f"3 of 10 items ran; --limit 4; {SUBSET_CAUSE}"


def test_explicit_node_ids_and_at_file_arguments(project):
    run(project, nodeid(IDS[0]), nodeid(IDS[5]))
    assert the_gate(project)["reason"] == f"2 of 10 items ran; {SUBSET_CAUSE}"
    (project.path / "some.txt").write_text("\n".join(nodeid(i) for i in IDS[:4]) + "\n", encoding="utf-8")
    run(project, "@some.txt")
    assert the_gate(project)["state"] == "not_evaluated"
    (project.path / "all.txt").write_text("\n".join(nodeid(i) for i in IDS) + "\n", encoding="utf-8")
    result = run(project, "@all.txt")
    assert result.ret == 0
    assert the_gate(project)["state"] == "passed", "every item of the suite named one by one is the suite"


def test_the_whole_suite_is_what_its_sampling_selects(project):
    """With a sampling plan the suite is its sample (6 of the 10 records); with --data sample, the bundled
    sample run whole (4 records) is the suite, and --limit below it is part of it."""
    write_jsonl(project.path / "suites" / "data" / "mini.jsonl", RECORDS[:4])
    write_suite(project.path, "mc", suite(sample="data/mini.jsonl", sampling={"count": 6, "seed": 3}))
    assert run(project, "suites").ret == 0
    document = read_run(project.path).summary
    assert (document["results"][0]["items"], document["results"][0]["suite_items"]) == (6, 6)
    assert the_gate(project)["state"] in ("passed", "failed")
    run(project, "suites", "--data", "sample")
    assert (read_run(project.path).results[0]["suite_items"], the_gate(project)["state"]) == (4, "passed")
    run(project, "suites", "--data", "sample", "--limit", "2")
    assert the_gate(project)["reason"] == "2 of 4 items ran; --limit 2"


def test_junit_marks_the_gates_of_a_subset_skipped_as_not_evaluated_or_failed_when_required(project):
    run(project, "suites", "-k", IDS[0], "--junitxml", "subset.xml")
    run(project, "suites", "-k", IDS[0], "--junitxml", "required.xml", "--require-gates")
    run(project, "suites", "--junitxml", "whole.xml")
    cases = {
        name: {c.get("name"): c for c in ET.parse(project.path / f"{name}.xml").iter("testcase")}
        for name in ("subset", "required", "whole")
    }
    gate = "gate[m:accuracy >= 60]"
    skipped = cases["subset"][gate].find("skipped")
    assert skipped is not None and cases["subset"][gate].find("failure") is None
    assert skipped.get("message") == f"not evaluated: 1 of 10 items ran; {SUBSET_CAUSE}"
    properties = {p.get("name"): p.get("value") for p in cases["subset"][gate].iter("property")}
    assert properties["state"] == "not_evaluated"
    failure = cases["required"][gate].find("failure")
    assert failure is not None and "which --require-gates forbids: 1 of 10 items ran" in failure.get("message")
    assert [child.tag for child in cases["whole"][gate]] == ["properties"]


def test_require_gates_also_fails_a_baseline_gate_skipped_for_want_of_a_baseline(project):
    write_suite(project.path, "mc", suite(60, {"metric": "accuracy", "max_drop": 2}))
    plain = run(project, "suites")
    assert plain.ret == 0
    plain.stdout.fnmatch_lines(["vnllmtest gates: No gate failed, but 1 of 2 passed: 1 skipped (no --baseline)."])
    document = read_run(project.path).summary
    assert document["gates_passed"] is True and document["gates_evaluated"] is False
    required = run(project, "suites", "--require-gates")
    assert required.ret == 1
    required.stdout.fnmatch_lines(
        ["*drop <= 2 vs baseline*FAIL (skipped, which --require-gates forbids: no --baseline given)"]
    )
    assert read_run(project.path).summary["gates_passed"] is False


def test_a_run_with_errored_items_never_says_all_gates_passed(project, replay):
    replay({k: v for k, v in ANSWERS.items() if k != IDS[9]}, model="m")
    result = run(project, "suites")
    assert result.ret == 1
    report = read_run(project.path)
    document = report.summary
    assert the_gate(project)["state"] == "passed"  # 7 of the 9 scored items right: the gate itself holds
    assert document["gates_passed"] is False
    assert document["gates_verdict"] == "Gates not passed: 1 item errored."
    result.stdout.fnmatch_lines(["vnllmtest gates: Gates not passed: 1 item errored."])
    page = report.html
    assert 'id="gates-failed">Gates not passed: 1 item errored.</p>' in page and "All gates passed" not in page
    assert "All gates passed" not in report.markdown


def test_a_report_that_cannot_be_written_never_says_all_gates_passed(project):
    # the report folder is writable when the run starts, and a file by the time the report is written
    project.makeconftest(
        "from pathlib import Path\n"
        "def pytest_collection_finish(session):\n"
        "    (Path(session.config.rootpath) / 'reports').write_text('not a folder')\n"
    )
    result = run(project, "suites")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        [
            "vnllmtest gates: Gates not passed: the report could not be written.",
            "vnllmtest: could not write the report*",
        ]
    )
    assert "All gates passed" not in result.stdout.str()


# Once every process has collected (xdist starts items only then), the suite's gate and metrics change on disk.
EDIT_AFTER_COLLECTION = """
from pathlib import Path

def pytest_runtest_setup(item):
    suite = Path(item.config.rootpath) / "suites" / "mc.yaml"
    text = suite.read_text(encoding="utf-8")
    suite.write_text(text.replace("min: 60}", "min: 95}").replace("metrics: [accuracy]", "metrics: [bogus]"), "utf-8")
"""


def test_gates_are_the_suites_as_collected_even_when_the_file_changes_during_the_run(project):
    project.makeconftest(EDIT_AFTER_COLLECTION)
    result = run(project, "suites")
    assert "min: 95}" in (project.path / "suites" / "mc.yaml").read_text("utf-8"), "the conftest edited the suite"
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*accuracy >= 60*PASS"])
    document = read_run(project.path).summary
    assert [gate["gate"] for gate in document["results"][0]["gates"]] == ["accuracy >= 60"]
    assert list(document["results"][0]["metrics"]) == ["accuracy"]


def test_under_xdist_the_subset_rule_and_the_collected_suite_hold(project):
    """The controller collects nothing: the suite's size and spec come with the workers' reports."""
    project.makeconftest(EDIT_AFTER_COLLECTION)
    subset = project.runpytest_subprocess("suites", "--model", "replay:preds.jsonl", "-n", "2", "-k", "01- or 02-")
    assert subset.ret == 0
    [result] = read_run(project.path).results
    assert (result["items"], result["suite_items"], list(result["metrics"])) == (4, 10, ["accuracy"])
    gate = the_gate(project)
    assert (gate["gate"], gate["state"]) == ("accuracy >= 60", "not_evaluated")
    assert gate["reason"] == f"4 of 10 items ran; {SUBSET_CAUSE}"


TOPICS = ["Bão số 3 đổ bộ Quảng Ninh", "Giá xăng giảm lần thứ ba", "Khai trương metro số 1", "Lúa bội thu ở An Giang"]
SUMMARIES = [
    {"id": f"c{n}", "documents": [{"title": t, "content": f"{t} hôm nay."}], "summaries": [f"{t} hôm nay."]}
    for n, t in enumerate(TOPICS)
]


def judged_suite(**judge: object) -> dict:
    """A summarization suite judged on `SUMMARY_JUDGE` (with `judge` on top), gated on ROUGE-L and the judge."""
    gates = [{"metric": "rouge_l", "min": 10}, {"metric": "judge_overall", "min": 5}]
    return {"task": "summarization", "judge": {**SUMMARY_JUDGE, **judge}, "gates": gates}


@pytest.mark.project(suites={"tomtat": judged_suite()}, records={"tomtat.jsonl": SUMMARIES})
def test_judge_gates_fail_when_too_few_verdicts_are_readable(project, replay):
    model = replay({r["id"]: r["summaries"][0] for r in SUMMARIES}, model="m")
    replies = ['{"accuracy": 9, "coherence": 8, "ly_do": "Đúng và gọn."}'] + ["Bản tóm tắt ổn."] * 3
    args = ("suites", "--model", model, "--judge", replay({r["id"]: a for r, a in zip(SUMMARIES, replies)}, "judge"))
    strict = project.runpytest(*args)
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(
        [
            "tomtat*rouge_l >= 10*PASS",
            "tomtat*judge_overall >= 5*8.5*FAIL (verdict coverage 25.0 < 95 (3 of 4 items without a readable verdict))",
        ]
    )
    write_suite(project.path, "tomtat", judged_suite(min_coverage=25))
    lenient = project.runpytest(*args)
    assert lenient.ret == 0
    lenient.stdout.fnmatch_lines(["tomtat*judge_overall >= 5*8.5*PASS"])
