"""Aggregation (metrics with CIs, breakdowns, gates) and the report files, without pytest runs."""

from __future__ import annotations

import pytest

from vnllmtest.aggregate import summarize
from vnllmtest.gates import check_gates, run_verdict
from vnllmtest.outcomes import ItemResult, RunFacts
from vnllmtest.report import RunReport, markdown, write_run
from vnllmtest.suite import Gate, SuiteSpec

from support import RunFolder

SPEC = SuiteSpec.model_validate(
    {
        "vnllmtest": 1,
        "name": "mc",
        "task": "multiple_choice",
        "dataset": {"adapter": "vmlu", "source": "x.jsonl"},
        "prompt": {"template": "{{ question }}"},
        "metrics": ["accuracy"],
        "item_pass": {"metric": "accuracy", "min": 1},
        "gates": [{"metric": "accuracy", "min": 50}, {"metric": "accuracy", "max": 90, "bound": "ci_high"}],
    }
)


def record(model: str, item_id: str, value: float | None, category: str, status: str | None = None) -> dict:
    status = status or ("passed" if value == 1 else "missed")
    return {
        "suite": "mc",
        "model": model,
        "id": item_id,
        "status": status,
        "failure_class": None if status == "passed" else ("model_error" if status == "error" else "wrong"),
        "metrics": {} if value is None else {"accuracy": value},
        "tags": {"category": category},
    }


RECORDS = [
    record("a", "1", 1.0, "STEM"),
    record("a", "2", 1.0, "STEM"),
    record("a", "3", 0.0, "Other"),
    record("a", "4", 1.0, "Other"),
    record("b", "1", 0.0, "STEM"),
    record("b", "2", None, "STEM", status="error"),
]


def gated(records, specs):
    """Summaries with their gates checked, as a run without a baseline makes them."""
    return check_gates(summarize([ItemResult.from_record(r) for r in records], specs), specs)


def report_of(summaries, items, manifest, facts: RunFacts) -> RunReport:
    typed = [ItemResult.from_record(item) for item in items]
    return RunReport(summaries, typed, manifest, facts, run_verdict(summaries, facts))


def test_summaries_per_suite_and_model_with_breakdowns():
    a, b = gated(RECORDS, {"mc": SPEC})
    assert (a.model, a.items, dict(a.statuses)) == ("a", 4, {"passed": 3, "missed": 1})
    assert a.metrics["accuracy"].value == pytest.approx(75.0) and a.metrics["accuracy"].n == 4
    assert a.metrics["accuracy"].low <= 75.0 <= a.metrics["accuracy"].high
    assert a.breakdowns["category"]["STEM"]["accuracy"].value == pytest.approx(100.0)
    assert a.breakdowns["category"]["Other"]["accuracy"].value == pytest.approx(50.0)
    assert b.metrics["accuracy"].n == 1 and b.statuses["error"] == 1  # errors are counted, not scored
    assert dict(b.failure_classes) == {"wrong": 1, "model_error": 1}


def test_estimates_do_not_depend_on_the_order_items_finished_in():
    """xdist workers report in any order; the bootstrap must see the same sample either way."""
    records = [record("a", f"{i:02d}", float(i * 7 % 5 < 2), ("STEM", "Other")[i % 2]) for i in range(40)]
    for index, item in enumerate(records):
        item["cluster"] = f"subject-{index % 9}"
    shuffled = records[1::2] + records[::2]
    forward, other = gated(records, {"mc": SPEC}), gated(shuffled, {"mc": SPEC})
    assert forward[0].metrics == other[0].metrics and forward[0].breakdowns == other[0].breakdowns


def test_gates_on_values_and_ci_bounds():
    a, b = gated(RECORDS, {"mc": SPEC})
    assert [(g.gate, g.passed) for g in a.gates] == [("accuracy >= 50", True), ("accuracy <= 90 (ci_high)", False)]
    assert a.gates[1].value == pytest.approx(100.0)
    assert not b.gates[0].passed and b.gates[0].reason == "threshold not met"


def test_a_suite_whose_items_all_errored_never_passes():
    [summary] = gated([record("c", "1", None, "STEM", status="error")], {"mc": SPEC})
    assert [g.passed for g in summary.gates] == [False, False]
    assert summary.gates[0].reason == "no scored items"


def test_lenient_gate_still_fails_without_items():
    spec = SPEC.model_copy(update={"gates": [Gate(metric="accuracy", max=100)]})
    [summary] = gated([record("c", "1", None, "STEM", status="error")], {"mc": spec})
    assert not summary.gates[0].passed


def test_report_files(tmp_path):
    summaries = gated(RECORDS, {"mc": SPEC})
    manifest = {"models": {"b": {}, "a": {}}, "suites": {"mc": {"data_origin": "bundled sample x.jsonl"}}}
    write_run(tmp_path, report_of(summaries, RECORDS, manifest, RunFacts(id="run-1")))
    run = RunFolder(tmp_path)
    assert run.summary["gates_passed"] is False
    assert run.results[0]["metrics"]["accuracy"]["value"] == pytest.approx(75.0)
    assert len(run.items) == len(RECORDS)
    text = run.markdown
    assert "| Dataset | Metric | b | a |" in text  # columns follow the --model order
    assert "| mc | accuracy | 0.0 [0.0, 0.0] | 75.0 [" in text
    assert "| mc | a | accuracy <= 90 (ci_high) | 100.0 | 75.0 [25.0, 100.0] | **FAIL** (threshold not met) |" in text
    assert "- `mc`: bundled sample x.jsonl" in text


def test_nan_becomes_null_in_strict_json(tmp_path):
    summaries = gated([record("c", "1", None, "STEM", status="error")], {"mc": SPEC})
    incomplete = report_of(summaries, [], {}, RunFacts(id="r", complete=False))
    write_run(tmp_path, incomplete)
    assert RunFolder(tmp_path).results[0]["metrics"]["accuracy"]["value"] is None
    assert "**Incomplete run**" in markdown(incomplete)


@pytest.mark.parametrize(("unscored", "state"), [(0, "passed"), (1, "passed"), (2, "failed"), (20, "failed")])
def test_a_gate_fails_when_too_few_items_could_be_scored_on_its_metric(unscored, state):
    both = SPEC.model_copy(
        update={
            "scoring": SPEC.scoring.model_copy(update={"mode": "both"}),
            "gates": [Gate(metric="accuracy_loglik", min=10), Gate(metric="accuracy", min=10)],
        }
    )
    records = []
    for number in range(20):
        item = record("a", f"{number:02d}", 1.0, "STEM")
        item["metrics"] = {"accuracy": 1.0} if number < unscored else {"accuracy": 1.0, "accuracy_loglik": 1.0}
        records.append(item)
    [summary] = gated(records, {"mc": both})
    assert summary.unscored["accuracy_loglik"] == unscored and summary.unscored["accuracy"] == 0
    loglik, generate = summary.gates
    assert (loglik.state, generate.state) == (state, "passed")
    if state == "failed":
        assert loglik.reason == f"{unscored} of 20 items could not be scored on accuracy_loglik (at least 95% must be)"
    assert f"({unscored} unscored)" in markdown(report_of([summary], [], {}, RunFacts(id="r"))) or unscored == 0
