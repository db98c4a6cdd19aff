"""Gating a checkpoint against a baseline run, end to end through pytest with replayed predictions,
so every difference, p-value and flipped item is known."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import RunFolder, read_run, replay_rows, write_jsonl, write_suite
from vnllmtest.metrics import mcnemar_exact

SUBJECTS = ("01", "02", "03", "04")
RECORDS = [
    {
        "id": f"{SUBJECTS[n % 4]}-{n:04d}",
        "question": f"Câu hỏi số {n}: đâu là đáp án đúng?",
        "choices": ["A. Một", "B. Hai", "C. Ba", "D. Bốn"],
        "answer": "ABCD"[n % 4],
    }
    for n in range(40)
]
IDS = [record["id"] for record in RECORDS]
# The baseline misses the last ten items (30 of 40 right, 75.0); the checkpoint misses items 0-3 too
# (regressions) but gets 30 and 31 right (fixes): 28 of 40, 70.0, a drop of 5 points.
REGRESSED, FIXED = IDS[:4], IDS[30:32]
BASELINE_RIGHT = set(IDS[:30])
CHECKPOINT_RIGHT = (BASELINE_RIGHT - set(REGRESSED)) | set(FIXED)


def predictions(right: set[str], model: str) -> list[dict[str, str]]:
    wrong = {"A": "B", "B": "C", "C": "D", "D": "A"}
    return replay_rows({r["id"]: r["answer"] if r["id"] in right else wrong[r["answer"]] for r in RECORDS}, model=model)


def suite(*gates: dict, **fields: object) -> dict:
    return {"task": "multiple_choice", "scoring": {"mode": "generate"}, **fields, "gates": list(gates)}


pytestmark = pytest.mark.project(
    suites={"mc": suite({"metric": "accuracy", "min": 25}, {"metric": "accuracy", "max_drop": 4})},
    records={"mc.jsonl": RECORDS},
    predictions={"base": predictions(BASELINE_RIGHT, "base"), "ckpt": predictions(CHECKPOINT_RIGHT, "ckpt")},
)


@pytest.fixture
def baseline(project: pytest.Pytester) -> RunFolder:
    """The run of the base model, in report folder `baseline`."""
    result = project.runpytest("suites", "--model", "replay:base.jsonl", "--report-dir", "baseline")
    assert result.ret == 0, "the baseline run skips its max_drop gate and passes"
    result.stdout.fnmatch_lines(["*accuracy drop <= 4 vs baseline*SKIPPED (no --baseline given)"])
    return read_run(project.path, "baseline")


def check(pytester: pytest.Pytester, baseline: RunFolder, *options: str) -> pytest.RunResult:
    return pytester.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", str(baseline.path), *options)


def test_a_drop_beyond_max_drop_fails_the_run_and_the_terminal_says_why(project, baseline):
    result = check(project, baseline)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*vnllmtest comparison with the baseline*",
            "mc*ckpt*accuracy*40*75.0 [[]*70.0 [[]*-5.0 [[]*(mcnemar)",
            "flipped: 4 regressions (pass -> miss), 2 fixes (miss -> pass)",
            "REGRESSED suites/mc.yaml::mc[[]ckpt:01-0000]: passed -> missed (accuracy 1.000 -> 0.000)",
            "*re-run exactly the flipped items: pytest @reports/*/flipped.txt",
            "*vnllmtest gates*",
            "mc*ckpt*accuracy drop <= 4 vs baseline*-5.0*FAIL (dropped 5.0 > 4 against base)",
        ]
    )
    document = read_run(project.path).summary
    difference = document["comparison"]["metrics"][0]
    assert difference["difference"]["value"] == pytest.approx(-5.0)
    assert difference["p_value"] == pytest.approx(mcnemar_exact(4, 2))
    assert document["gates_passed"] is False


def test_a_baseline_with_another_definition_of_the_metric_is_not_compared(project, baseline):
    document = baseline.summary
    current = document["metric_definitions"]["accuracy"]
    document["metric_definitions"]["accuracy"] = current + 1  # as if the baseline had another definition
    (baseline.path / "summary.json").write_text(json.dumps(document), "utf-8")
    result = check(project, baseline)
    reason = f"definition changed (baseline v{current + 1}, this run v{current})"
    result.stdout.fnmatch_lines(
        [f"mc [[]ckpt] accuracy: not compared, {reason}", f"*accuracy drop <= 4 vs baseline*FAIL ({reason})"]
    )
    assert result.ret == 1
    run = read_run(project.path)
    comparison = run.summary["comparison"]
    assert comparison["metrics"] == [] and comparison["incomparable"][0]["reason"] == reason
    assert f"**not compared**: {reason}" in run.markdown


def test_the_gate_passes_when_the_drop_is_within_max_drop(project, baseline):
    write_suite(project.path, "mc", suite({"metric": "accuracy", "max_drop": 5}))
    result = check(project, baseline)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["mc*ckpt*accuracy drop <= 5 vs baseline*PASS"])


def test_with_significance_an_insignificant_drop_passes_and_says_so(project, baseline):
    write_suite(project.path, "mc", suite({"metric": "accuracy", "max_drop": 4, "significance": 0.05}))
    result = check(project, baseline)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*accuracy drop <= 4 vs baseline, p < 0.05*PASS (drop of 5.0 is not significant (p=0.688))"]
    )


def test_a_ci_bound_gate_is_stricter_than_the_point_value(project, baseline):
    write_suite(project.path, "mc", suite({"metric": "accuracy", "max_drop": 6, "bound": "ci_low"}))
    result = check(project, baseline)
    assert result.ret == 1  # the point drop is 5, but the CI's low end lies further down
    result.stdout.fnmatch_lines(["*accuracy drop <= 6 vs baseline (ci_low)*FAIL (dropped *"])


def test_the_flipped_list_is_exact_and_reruns_exactly_those_items(project, baseline):
    check(project, baseline)
    run = read_run(project.path)
    flips = run.summary["comparison"]["flips"]
    assert [(f["id"], f["direction"]) for f in flips] == [(i, "regression") for i in REGRESSED] + [
        (i, "fix") for i in FIXED
    ]
    markdown = run.markdown
    assert "### Flipped items (4 regressions, 2 fixes)" in markdown
    assert "| mc | ckpt | `01-0000` | pass → miss | passed | missed | accuracy 1.000 → 0.000 |" in markdown
    rerun = project.runpytest(f"@{run.path / 'flipped.txt'}", "--report-dir", "rerun")
    assert rerun.parseoutcomes() == {"missed": 4, "passed": 2}
    assert sorted(item["id"] for item in read_run(project.path, "rerun").items) == sorted(REGRESSED + FIXED)


def test_items_in_only_one_run_are_reported_not_dropped(project, baseline, replay):
    write_jsonl(project.path / "suites" / "data" / "mc.jsonl", RECORDS[2:] + [{**RECORDS[0], "id": "05-0100"}])
    replay(predictions(CHECKPOINT_RIGHT, "ckpt") + [{"id": "05-0100", "prediction": "A", "model": "ckpt"}], "ckpt")
    result = check(project, baseline)
    result.stdout.fnmatch_lines(["mc [[]ckpt]: 1 items only in this run, 2 only in the baseline; not compared*"])
    run = read_run(project.path)
    coverage = run.summary["comparison"]["coverage"][0]
    assert coverage["shared"] == 38
    assert coverage["only_current"] == ["05-0100"] and coverage["only_baseline"] == IDS[:2]
    assert "- mc [ckpt]: 2 items only in the baseline, not compared: `01-0000`, `02-0001`" in run.markdown


def test_clustered_suites_record_clusters_and_widen_their_intervals(project, baseline):
    unclustered = baseline.results[0]
    write_suite(project.path, "mc", suite({"metric": "accuracy", "min": 25}, cluster_by="subject"))
    project.runpytest("suites", "--model", "replay:base.jsonl")
    run = read_run(project.path)
    clustered = run.results[0]
    assert clustered["cluster_by"] == "subject" and clustered["clusters"] == 4
    assert unclustered["cluster_by"] is None and unclustered["clusters"] == 0
    assert {item["cluster"] for item in run.items} == set(SUBJECTS)
    assert "resamples whole clusters of items sharing `subject` (4 clusters)" in run.markdown


def test_a_cluster_key_no_record_has_is_a_collection_error(project):
    write_suite(project.path, "mc", suite({"metric": "accuracy", "min": 25}, cluster_by="chapter"))
    result = project.runpytest("suites", "--model", "replay:base.jsonl")
    assert result.ret == 2
    result.stdout.fnmatch_lines(
        ["*suites/mc.yaml: cluster_by 'chapter': record 01-0000 (*mc.jsonl:1) has no tag or field*"]
    )


def test_junit_xml_has_the_gates_as_test_cases_and_item_metrics_as_properties(project, baseline):
    result = check(project, baseline, "--junitxml", "junit.xml")
    assert result.ret == 1
    suite = ET.parse(project.path / "junit.xml").getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    gate = cases["gate[ckpt:accuracy drop <= 4 vs baseline]"]
    assert gate.get("classname") == "suites.mc.yaml"
    assert "dropped 5.0 > 4" in gate.find("failure").get("message")
    assert cases["gate[ckpt:accuracy >= 25]"].find("failure") is None
    item = cases["mc[ckpt:01-0000]"]
    properties = {p.get("name"): p.get("value") for p in item.iter("property")}
    assert properties == {"status": "missed", "metric.accuracy": "0.0"}
    assert int(suite.get("tests")) == 42


def test_without_a_baseline_junit_marks_the_relative_gate_skipped(project):
    project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--junitxml", "junit.xml")
    cases = {c.get("name"): c for c in ET.parse(project.path / "junit.xml").getroot().iter("testcase")}
    skipped = cases["gate[ckpt:accuracy drop <= 4 vs baseline]"].find("skipped")
    assert skipped.get("message") == "no --baseline given"


def missing_folder(folder: Path) -> Path:
    return folder / "missing"


def without_items(folder: Path) -> Path:
    (folder / "items.jsonl").unlink()
    return folder


def with_a_broken_line(folder: Path) -> Path:
    (folder / "items.jsonl").write_text('{"suite": "mc"\n', "utf-8")
    return folder


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (missing_folder, "*--baseline: */missing: no such run folder or file*"),
        (without_items, "*items.jsonl: not found; a stored run needs*"),
        (with_a_broken_line, "*items.jsonl:1: not a JSON record*"),
    ],
)
def test_a_bad_baseline_is_a_usage_error_before_any_model_loads(project, baseline, setup, expected):
    folder = setup(baseline.path)
    result = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", str(folder))
    assert result.ret == 4
    result.stderr.fnmatch_lines([expected])
    assert not (project.path / "reports").exists()


def test_an_ambiguous_baseline_model_must_be_chosen(project, replay):
    other = replay(predictions(BASELINE_RIGHT, "other"), "other")
    project.runpytest("suites", "--model", "replay:base.jsonl", "--model", other, "--report-dir", "two")
    two = str(read_run(project.path, "two").path)
    result = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", two)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*several models (base, other) and none is 'ckpt': choose one with --baseline-model*"])
    chosen = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", two, "--baseline-model", "other")
    chosen.stdout.fnmatch_lines(["mc*ckpt*accuracy*-5.0*"])


def test_compare_command_prints_the_same_comparison_without_running_models(project, baseline):
    check(project, baseline)
    run = read_run(project.path)
    result = project.run(sys.executable, "-m", "vnllmtest", "compare", str(baseline.path), str(run.path))
    assert result.ret == 0
    text = result.stdout.str()
    assert f"| Dataset | Metric | base ({baseline.path.name}) | ckpt ({run.path.name}) |" in text
    assert "| mc | accuracy | 75.0 [" in text
    assert "| mc | accuracy | ckpt | base | 40 | 75.0 [" in text and "| -5.0 [" in text
    assert f"| {mcnemar_exact(4, 2):.3g} (mcnemar) |" in text
    assert "### Flipped items (4 regressions, 2 fixes)" in text
    report_markdown = run.markdown
    comparison_part = report_markdown[report_markdown.index("### Flipped items") :].split("\n## ")[0]
    assert comparison_part.strip() in text


def test_compare_command_names_the_bad_file_and_exits_2(project, baseline):
    broken = project.path / "broken.jsonl"
    broken.write_text('{"suite": "mc", "model": "x", "id": "1", "status": "passed", "metrics": {}}\nnot json\n', "utf-8")
    result = project.run(Path(sys.executable).parent / "vnllmtest", "compare", str(baseline.path), str(broken))
    assert result.ret == 2
    result.stderr.fnmatch_lines(["vnllmtest compare: */broken.jsonl:2: not a JSON record*"])


def test_under_xdist_the_comparison_and_junit_gates_are_the_same(project, baseline):
    check(project, baseline, "--junitxml", "single.xml")
    single = read_run(project.path).summary["comparison"]
    result = check(project, baseline, "-n", "2", "--junitxml", "xdist.xml")
    assert result.ret == 1
    assert read_run(project.path).summary["comparison"] == single
    gates = [
        {case.get("name"): case.find("failure") is not None for case in ET.parse(project.path / name).iter("testcase")}
        for name in ("single.xml", "xdist.xml")
    ]
    assert gates[0] == gates[1] and gates[1]["gate[ckpt:accuracy drop <= 4 vs baseline]"] is True
