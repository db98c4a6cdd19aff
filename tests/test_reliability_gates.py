"""Gates never pass because something broke: NaN metrics fail them, a baseline holding NaN is refused before
any model loads, and a run stopped early is marked incomplete and never counts as passed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from support import SUMMARY_JUDGE, RunFolder, run_folders, suite_document

from vnllmtest.aggregate import summarize
from vnllmtest.cli import main as vnllmtest_main
from vnllmtest.comparison import compare
from vnllmtest.gates import check_gates, gate_outcome, gates_verdict, run_verdict
from vnllmtest.outcomes import ItemResult, RunFacts, RunScope
from vnllmtest.report import RunReport, write_run
from vnllmtest.stored_run import StoredRun
from vnllmtest.suite import SuiteSpec

MIN_GATE, DROP_GATE = {"metric": "accuracy", "min": 40}, {"metric": "accuracy", "max_drop": 10}
RECORDS = [
    {"id": f"01-000{n}", "question": f"Câu {n}?", "choices": ["A. Có", "B. Không"], "answer": "A"} for n in range(1, 7)
]
LENIENT = {"metric": "accuracy", "max": 100}  # a gate any number meets
SPEC = SuiteSpec.model_validate(suite_document("mc", "multiple_choice", gates=[MIN_GATE, LENIENT]))


def typed(records: list[dict]) -> list[ItemResult]:
    return [ItemResult.from_record(record) for record in records]


def record(model: str, item_id: str, value: float) -> dict:
    status = {"status": "passed", "failure_class": None}
    return {"suite": "mc", "model": model, "id": item_id, **status, "metrics": {"accuracy": value}}


def test_a_nan_or_infinite_metric_fails_every_gate_on_it_and_the_report_is_still_written(tmp_path):
    records = [record("nan", "1", 1.0), record("nan", "2", math.nan), record("inf", "1", math.inf)]
    records.append(record("ok", "1", 1.0))
    summaries = check_gates(summarize(typed(records), {"mc": SPEC}), {"mc": SPEC})
    by_model = {summary.model: summary for summary in summaries}
    for model in ("nan", "inf"):
        assert math.isnan(by_model[model].metrics["accuracy"].value)
        assert [(gate.passed, gate.reason) for gate in by_model[model].gates] == [(False, "value is NaN")] * 2
    assert all(gate.passed for gate in by_model["ok"].gates)
    facts = RunFacts(id="r")
    write_run(tmp_path, RunReport(summaries, typed(records), {}, facts, run_verdict(summaries, facts)))
    written = RunFolder(tmp_path)
    document = written.summary  # strict JSON: null, never NaN
    assert document["gates_passed"] is False
    values = {result["model"]: result["metrics"]["accuracy"]["value"] for result in document["results"]}
    assert values == {"inf": None, "nan": None, "ok": 100.0}
    assert [item["metrics"]["accuracy"] for item in written.items] == [1.0, None, None, 1.0]


pytestmark = pytest.mark.project(
    suites={"mc": {"task": "multiple_choice", "gates": [MIN_GATE, DROP_GATE]}},
    records={"mc.jsonl": RECORDS},
    predictions={"preds": {r["id"]: a for r, a in zip(RECORDS, ["A", "A", "B", "A", "A", "A"])}},  # the third misses
)


def test_a_baseline_holding_nan_metrics_is_refused_before_any_model_loads(project, capsys):
    assert project.runpytest("suites", "--model", "replay:preds.jsonl", "--report-dir", "baseline").ret == 0
    [run] = run_folders(project.path, "baseline")
    baseline, items = run.path, run.path / "items.jsonl"
    lines = items.read_text("utf-8").splitlines()
    lines[2] = lines[2].replace('"accuracy": 0.0', '"accuracy": NaN')
    items.write_text("\n".join(lines), "utf-8")
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "--baseline", str(baseline))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--baseline: {items}:3: metric 'accuracy' is nan, not a finite number*"])
    assert not (project.path / "reports").exists()
    assert vnllmtest_main(["compare", str(baseline), str(baseline)]) == 2
    assert f"{items}:3: metric 'accuracy' is nan, not a finite number" in capsys.readouterr().err


def test_a_run_stopped_early_is_marked_incomplete_and_never_passes(project):
    """With -x the run stops at the first miss: the gate computed on the items that ran would pass, but
    they are half the suite, so the gate is not evaluated, summary.json says the gates did not pass, and
    the exit code is 1."""
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == {"passed": 2, "missed": 1}
    result.stdout.fnmatch_lines(
        [
            "mc*3 of 6*accuracy >= 40*NOT EVALUATED (3 of 6 items ran; the run stopped early)",
            "vnllmtest gates: Gates not passed: the run stopped early.",
        ]
    )
    [run] = run_folders(project.path)
    document = run.summary
    assert document["run"]["complete"] is False and document["gates_passed"] is False
    assert document["gates_evaluated"] is False
    assert document["results"][0]["items"] == 3 and document["results"][0]["suite_items"] == 6
    assert [gate["state"] for gate in document["results"][0]["gates"]] == ["not_evaluated", "not_evaluated"]
    assert "**Incomplete run**" in run.markdown


def judged_spec(**judge: object) -> SuiteSpec:
    """A summarization suite judged on `SUMMARY_JUDGE` (with `judge` on top), gated on ROUGE-L and the judge."""
    gates = [
        {"metric": "rouge_l", "min": 10},
        {"metric": "judge_overall", "min": 6},
        {"metric": "judge_accuracy", "max_drop": 2},
    ]
    return SuiteSpec.model_validate(
        suite_document(
            "summ",
            "summarization",
            prompt={"template": "Tóm tắt: {{ documents }}"},
            item_pass={"metric": "rouge_l", "min": 0.3},
            judge={**SUMMARY_JUDGE, **judge},
            gates=gates,
        )
    )


JUDGED = judged_spec()


def judged(item_id: str, readable: bool, score: float = 9.0, status: str = "passed") -> dict:
    """A judged summary: a readable verdict adds the judge's scores, an unreadable one only its coverage 0."""
    metrics = {"rouge_l": 0.4, "verdict_coverage": 1.0 if readable else 0.0}
    if readable:
        metrics |= {"judge_overall": score, "judge_accuracy": score, "judge_coherence": score}
    return {"suite": "summ", "model": "m", "id": item_id, "status": status, "failure_class": None, "metrics": metrics}


def judged_gates(records: list[dict], spec: SuiteSpec = JUDGED, scope: RunScope | None = None) -> list:
    specs = {"summ": spec}
    [summary] = check_gates(summarize(typed(records), specs, iterations=200, scope=scope), specs, None, scope)
    return [(gate.metric, gate.state, gate.reason) for gate in summary.gates]


def test_one_readable_verdict_among_ten_fails_every_judge_gate_but_not_the_others():
    records = [judged("c0", True)] + [judged(f"c{n}", False) for n in range(1, 10)]
    reason = "verdict coverage 10.0 < 95 (9 of 10 items without a readable verdict)"
    assert judged_gates(records) == [
        ("rouge_l", "passed", ""),
        ("judge_overall", "failed", reason),
        ("judge_accuracy", "failed", reason),  # fails even though, without --baseline, it would be skipped
    ]


@pytest.mark.parametrize(
    ("readable", "unreadable", "judge_state", "reason"),
    [
        (19, 1, "passed", ""),  # 95.0: exactly the floor
        (40, 1, "passed", ""),  # 97.6
        (18, 1, "failed", "verdict coverage 94.7 < 95 (1 of 19 items without a readable verdict)"),
        (399, 21, "passed", ""),  # 95.0 exactly, from larger counts
        (0, 4, "failed", "verdict coverage 0.0 < 95 (4 of 4 items without a readable verdict)"),
    ],
)
def test_the_coverage_floor_is_95_points_of_the_judged_items(readable, unreadable, judge_state, reason):
    records = [judged(f"r{n}", True) for n in range(readable)] + [judged(f"u{n}", False) for n in range(unreadable)]
    gates = judged_gates(records)
    assert gates[1] == ("judge_overall", judge_state, reason)
    assert gates[2][1] == ("skipped" if judge_state == "passed" else "failed")


def test_coverage_shown_just_below_the_floor_is_never_rounded_up_to_it():
    # 398 of 419 is 94.99, which one decimal would round to "95.0 < 95"
    records = [judged(f"r{n}", True) for n in range(398)] + [judged(f"u{n}", False) for n in range(21)]
    assert judged_gates(records)[1][2] == "verdict coverage 94.9 < 95 (21 of 419 items without a readable verdict)"


def test_a_judged_suite_with_no_judged_item_fails_its_judge_gates():
    unjudged = [{**judged(f"c{n}", True), "metrics": {"rouge_l": 0.4}} for n in range(3)]
    errored = [{**judged(f"e{n}", False), "status": "error", "metrics": {}} for n in range(3)]
    for records in (unjudged, errored):
        gates = judged_gates(records)
        assert gates[1] == ("judge_overall", "failed", "no item was judged (verdict coverage n/a)")
        assert gates[0][0] == "rouge_l" and gates[0][2] != "no item was judged (verdict coverage n/a)"


def test_errored_items_do_not_count_against_the_verdict_coverage():
    records = [judged(f"c{n}", True) for n in range(20)] + [judged(f"e{n}", False, status="error") for n in range(5)]
    assert judged_gates(records)[1] == ("judge_overall", "passed", "")


def test_a_partial_run_leaves_judge_gates_not_evaluated_whatever_the_coverage():
    records = [judged("c0", True), judged("c1", False)]
    gates = judged_gates(records, scope=RunScope({"summ": 10}, limit=2))
    assert {state for _, state, _ in gates} == {"not_evaluated"}
    assert gates[1][2] == "2 of 10 items ran; --limit 2"


def test_a_suite_declares_its_own_coverage_floor():
    lenient = judged_spec(min_coverage=50)
    half = [judged("c0", True), judged("c1", True), judged("c2", False), judged("c3", False)]
    assert judged_gates(half, lenient)[1] == ("judge_overall", "passed", "")
    strict = judged_spec(min_coverage=100)
    assert judged_gates(half[:2] + half[2:3], strict)[1][2].startswith("verdict coverage 66.6 < 100 (1 of 3")


SUBSET = "a subset chosen by -k, -m, --lf, --deselect or node ids"


@pytest.mark.parametrize(
    ("scope", "planned", "ran", "expected"),
    [
        (RunScope({}), None, 3, None),  # size unknown (not a pytest run): whole
        (RunScope({}), 30, 30, None),
        (RunScope({}), 30, 31, None),
        (RunScope({}), 30, 1, f"1 of 30 items ran; {SUBSET}"),
        (RunScope({}, limit=5), 30, 5, "5 of 30 items ran; --limit 5"),
        (RunScope({}, limit=5), 30, 3, f"3 of 30 items ran; --limit 5; {SUBSET}"),
        (RunScope({}, limit=50), 30, 29, f"29 of 30 items ran; {SUBSET}"),
        (RunScope({}, limit=30), 30, 30, None),
        (RunScope({}, stopped=True), 30, 10, "10 of 30 items ran; the run stopped early"),
        (RunScope({}, limit=20, stopped=True), 30, 7, "7 of 30 items ran; the run stopped early; --limit 20"),
    ],
)
def test_what_makes_a_group_part_of_its_suite(scope, planned, ran, expected):
    assert scope.shortfall(planned, ran) == expected


@pytest.mark.parametrize(
    ("states", "facts", "passed", "evaluated", "headline"),
    [
        (["passed", "passed"], {}, True, True, "All gates passed."),
        ([], {}, True, True, "No gates declared."),
        (["passed", "failed", "failed"], {}, False, True, "Gates not passed: 2 of 3 gates failed."),
        (
            ["passed", "not_evaluated"],
            {},
            True,
            False,
            "No gate failed, but 1 of 2 passed: 1 not evaluated (the run covered part of a suite).",
        ),
        (
            ["not_evaluated", "skipped"],
            {"require_gates": True},
            False,
            False,
            "Gates not passed: 2 of 2 gates not evaluated, which --require-gates forbids.",
        ),
        (["passed", "skipped"], {}, True, False, "No gate failed, but 1 of 2 passed: 1 skipped (no --baseline)."),
        (["passed"], {"errored": 1}, False, True, "Gates not passed: 1 item errored."),
        (
            ["passed"],
            {"errored": 3, "uncollected": 2},
            False,
            False,
            "Gates not passed: 3 items errored; 2 suites could not be collected.",
        ),
        (["not_evaluated"], {"complete": False}, False, False, "Gates not passed: the run stopped early."),
        (["passed"], {"report_written": False}, False, True, "Gates not passed: the report could not be written."),
        (
            ["failed", "not_evaluated"],
            {"require_gates": True},
            False,
            False,
            "Gates not passed: 1 of 2 gates failed; 1 of 2 gates not evaluated, which --require-gates forbids.",
        ),
        (["garbled"], {}, False, True, "Gates not passed: 1 of 1 gates failed."),  # an unknown state never passes
    ],
)
def test_the_one_verdict_on_a_runs_gates(states, facts, passed, evaluated, headline):
    verdict = gates_verdict(states, **facts)
    assert (verdict.passed, verdict.evaluated, verdict.headline) == (passed, evaluated, headline)


@pytest.mark.parametrize(
    ("state", "required", "expected"),
    [
        ("passed", True, ("pass", "")),
        ("failed", False, ("FAIL", "threshold not met")),
        ("skipped", False, ("skipped", "no --baseline given")),
        ("skipped", True, ("FAIL", "skipped, which --require-gates forbids: no --baseline given")),
        ("not_evaluated", False, ("not evaluated", "1 of 4 items ran")),
        ("not_evaluated", True, ("FAIL", "not evaluated, which --require-gates forbids: 1 of 4 items ran")),
    ],
)
def test_how_a_gate_reads_with_and_without_require_gates(state, required, expected):
    reasons = {"passed": "", "failed": "threshold not met", "skipped": "no --baseline given"}
    assert gate_outcome(state, reasons.get(state, "1 of 4 items ran"), required) == expected


@pytest.mark.parametrize(
    ("ours", "theirs", "reason", "unscored"),
    [
        ({}, {"accuracy": 1.0}, "4 of 4 items could not be scored on accuracy (at least 95% must be)", 4),
        ({"accuracy": 1.0}, {}, "no item scored on it by both this run and the baseline", 0),
    ],
)
def test_a_baseline_gate_on_a_metric_one_run_could_not_score_fails_and_says_so(ours, theirs, reason, unscored):
    spec = SuiteSpec.model_validate(suite_document("mc", "multiple_choice", gates=[LENIENT, DROP_GATE]))
    stored = [{**record("m", str(n), 1.0), "metrics": theirs} for n in range(4)]
    baseline = StoredRun(Path("base"), "base", typed(stored), {"metric_definitions": {"accuracy": 2}})
    current = [{**record("m", str(n), 1.0), "metrics": ours} for n in range(4)]
    comparison = compare(typed(current), baseline, {"mc": spec.reported_metrics}, iterations=200)
    [summary] = check_gates(summarize(typed(current), {"mc": spec}, iterations=200), {"mc": spec}, comparison)
    relative = next(gate for gate in summary.gates if "baseline" in gate.gate)
    assert (relative.state, relative.reason) == ("failed", reason)
    assert summary.unscored == {"accuracy": unscored}
