"""Gates never pass because something broke: NaN metrics fail them, a baseline holding NaN is refused before
any model loads, and a run stopped early is marked incomplete and never counts as passed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from support import INNER_RUN_INI, write_jsonl

from vnllmtest.aggregate import summarize
from vnllmtest.cli import main as vnllmtest_main
from vnllmtest.report import write_run
from vnllmtest.suite import SuiteSpec

SUITE = """vnllmtest: 1
name: mc
task: multiple_choice
dataset: {adapter: vmlu, source: data/mc.jsonl}
prompt: {template: "{{ question }}"}
metrics: [accuracy]
item_pass: {metric: accuracy, min: 1}
gates:
  - {metric: accuracy, min: 40}
  - {metric: accuracy, max_drop: 10}
"""
RECORDS = [
    {"id": f"01-000{n}", "question": f"Câu {n}?", "choices": ["A. Có", "B. Không"], "answer": "A"} for n in range(1, 7)
]
LENIENT = "{metric: accuracy, max: 100}"  # a gate any number meets
SPEC = SuiteSpec.model_validate(yaml.safe_load(SUITE.replace("{metric: accuracy, max_drop: 10}", LENIENT)))


def record(model: str, item_id: str, value: float) -> dict:
    status = {"status": "passed", "failure_class": None}
    return {"suite": "mc", "model": model, "id": item_id, **status, "metrics": {"accuracy": value}}


def test_a_nan_or_infinite_metric_fails_every_gate_on_it_and_the_report_is_still_written(tmp_path):
    records = [record("nan", "1", 1.0), record("nan", "2", math.nan), record("inf", "1", math.inf)]
    records.append(record("ok", "1", 1.0))
    summaries = summarize(records, {"mc": SPEC})
    by_model = {summary.model: summary for summary in summaries}
    for model in ("nan", "inf"):
        assert math.isnan(by_model[model].metrics["accuracy"].value)
        assert [(gate.passed, gate.reason) for gate in by_model[model].gates] == [(False, "value is NaN")] * 2
    assert all(gate.passed for gate in by_model["ok"].gates)
    write_run(tmp_path, summaries, records, {}, {"id": "r", "complete": True})
    document = json.loads((tmp_path / "summary.json").read_text("utf-8"))  # strict JSON: null, never NaN
    assert document["gates_passed"] is False
    values = {result["model"]: result["metrics"]["accuracy"]["value"] for result in document["results"]}
    assert values == {"inf": None, "nan": None, "ok": 100.0}
    written = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text("utf-8").splitlines()]
    assert [item["metrics"]["accuracy"] for item in written] == [1.0, None, None, 1.0]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INNER_RUN_INI)
    write_jsonl(pytester.path / "suites" / "data" / "mc.jsonl", RECORDS)
    (pytester.path / "suites" / "mc.yaml").write_text(SUITE, encoding="utf-8")
    answers = ["A", "A", "B", "A", "A", "A"]  # the third is a miss
    write_jsonl(pytester.path / "preds.jsonl", [{"id": r["id"], "prediction": a} for r, a in zip(RECORDS, answers)])
    return pytester


def runs(pytester: pytest.Pytester, report_dir: str = "reports") -> list[Path]:
    return sorted((pytester.path / report_dir).iterdir())


def test_a_baseline_holding_nan_metrics_is_refused_before_any_model_loads(project, capsys):
    assert project.runpytest("suites", "--model", "replay:preds.jsonl", "--report-dir", "baseline").ret == 0
    [baseline] = runs(project, "baseline")
    items = baseline / "items.jsonl"
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
    """With -x the run stops at the first miss: the gates computed on the items that ran would pass,
    but the run is incomplete, so summary.json says the gates did not pass, and the exit code is 1."""
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == {"passed": 2, "missed": 1}
    result.stdout.fnmatch_lines(["mc*accuracy >= 40*PASS"])
    [run] = runs(project)
    document = json.loads((run / "summary.json").read_text("utf-8"))
    assert document["run"]["complete"] is False and document["gates_passed"] is False
    assert document["results"][0]["items"] == 3
    assert "**Incomplete run**" in (run / "summary.md").read_text("utf-8")
