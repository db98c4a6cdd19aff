"""Gating a checkpoint against a baseline run, end to end through pytest with replayed predictions,
so every difference, p-value and flipped item is known."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import write_jsonl
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
    return [
        {"id": r["id"], "prediction": r["answer"] if r["id"] in right else wrong[r["answer"]], "model": model}
        for r in RECORDS
    ]


def write_suite(root: Path, gates: str, extra: str = "") -> None:
    (root / "suites").mkdir(exist_ok=True)
    (root / "suites" / "mc.yaml").write_text(
        f"""vnllmtest: 1
name: mc
task: multiple_choice
dataset: {{adapter: vmlu, source: data/mc.jsonl}}
prompt: {{template: "{{{{ question }}}}"}}
scoring: {{mode: generate}}
metrics: [accuracy]
item_pass: {{metric: accuracy, min: 1}}
{extra}gates:
{gates}
""",
        encoding="utf-8",
    )


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    write_jsonl(pytester.path / "suites" / "data" / "mc.jsonl", RECORDS)
    write_suite(pytester.path, "  - {metric: accuracy, min: 25}\n  - {metric: accuracy, max_drop: 4}")
    write_jsonl(pytester.path / "base.jsonl", predictions(BASELINE_RIGHT, "base"))
    write_jsonl(pytester.path / "ckpt.jsonl", predictions(CHECKPOINT_RIGHT, "ckpt"))
    result = pytester.runpytest("suites", "--model", "replay:base.jsonl", "--report-dir", "baseline")
    assert result.ret == 0, "the baseline run skips its max_drop gate and passes"
    result.stdout.fnmatch_lines(["*accuracy drop <= 4 vs baseline*SKIPPED (no --baseline given)"])
    return pytester


def run_folder(pytester: pytest.Pytester, report_dir: str = "reports") -> Path:
    return sorted((pytester.path / report_dir).iterdir())[-1]


def baseline_folder(pytester: pytest.Pytester) -> Path:
    return run_folder(pytester, "baseline")


def check(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    return pytester.runpytest(
        "suites", "--model", "replay:ckpt.jsonl", "--baseline", str(baseline_folder(pytester)), *options
    )


def test_a_drop_beyond_max_drop_fails_the_run_and_the_terminal_says_why(project):
    result = check(project)
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
    document = json.loads((run_folder(project) / "summary.json").read_text("utf-8"))
    difference = document["comparison"]["metrics"][0]
    assert difference["difference"]["value"] == pytest.approx(-5.0)
    assert difference["p_value"] == pytest.approx(mcnemar_exact(4, 2))
    assert document["gates_passed"] is False


def test_a_baseline_with_another_definition_of_the_metric_is_not_compared(project):
    summary_file = baseline_folder(project) / "summary.json"
    document = json.loads(summary_file.read_text("utf-8"))
    current = document["metric_definitions"]["accuracy"]
    document["metric_definitions"]["accuracy"] = current + 1  # as if the baseline had another definition
    summary_file.write_text(json.dumps(document), "utf-8")
    result = check(project)
    reason = f"definition changed (baseline v{current + 1}, this run v{current})"
    result.stdout.fnmatch_lines(
        [f"mc [[]ckpt] accuracy: not compared, {reason}", f"*accuracy drop <= 4 vs baseline*FAIL ({reason})"]
    )
    assert result.ret == 1
    comparison = json.loads((run_folder(project) / "summary.json").read_text("utf-8"))["comparison"]
    assert comparison["metrics"] == [] and comparison["incomparable"][0]["reason"] == reason
    assert f"**not compared**: {reason}" in (run_folder(project) / "summary.md").read_text("utf-8")


def test_the_gate_passes_when_the_drop_is_within_max_drop(project):
    write_suite(project.path, "  - {metric: accuracy, max_drop: 5}")
    result = check(project)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["mc*ckpt*accuracy drop <= 5 vs baseline*PASS"])


def test_with_significance_an_insignificant_drop_passes_and_says_so(project):
    write_suite(project.path, "  - {metric: accuracy, max_drop: 4, significance: 0.05}")
    result = check(project)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*accuracy drop <= 4 vs baseline, p < 0.05*PASS (drop of 5.0 is not significant (p=0.688))"]
    )


def test_a_ci_bound_gate_is_stricter_than_the_point_value(project):
    write_suite(project.path, "  - {metric: accuracy, max_drop: 6, bound: ci_low}")
    result = check(project)
    assert result.ret == 1  # the point drop is 5, but the CI's low end lies further down
    result.stdout.fnmatch_lines(["*accuracy drop <= 6 vs baseline (ci_low)*FAIL (dropped *"])


def test_the_flipped_list_is_exact_and_reruns_exactly_those_items(project):
    check(project)
    folder = run_folder(project)
    flips = json.loads((folder / "summary.json").read_text("utf-8"))["comparison"]["flips"]
    assert [(f["id"], f["direction"]) for f in flips] == [(i, "regression") for i in REGRESSED] + [
        (i, "fix") for i in FIXED
    ]
    markdown = (folder / "summary.md").read_text("utf-8")
    assert "### Flipped items (4 regressions, 2 fixes)" in markdown
    assert "| mc | ckpt | `01-0000` | pass → miss | passed | missed | accuracy 1.000 → 0.000 |" in markdown
    rerun = project.runpytest(f"@{folder / 'flipped.txt'}", "--report-dir", "rerun")
    assert rerun.parseoutcomes() == {"missed": 4, "passed": 2}
    items = (run_folder(project, "rerun") / "items.jsonl").read_text("utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in items) == sorted(REGRESSED + FIXED)


def test_items_in_only_one_run_are_reported_not_dropped(project):
    write_jsonl(project.path / "suites" / "data" / "mc.jsonl", RECORDS[2:] + [{**RECORDS[0], "id": "05-0100"}])
    rows = predictions(CHECKPOINT_RIGHT, "ckpt") + [{"id": "05-0100", "prediction": "A", "model": "ckpt"}]
    write_jsonl(project.path / "ckpt.jsonl", rows)
    result = check(project)
    result.stdout.fnmatch_lines(["mc [[]ckpt]: 1 items only in this run, 2 only in the baseline; not compared*"])
    coverage = json.loads((run_folder(project) / "summary.json").read_text("utf-8"))["comparison"]["coverage"][0]
    assert coverage["shared"] == 38
    assert coverage["only_current"] == ["05-0100"] and coverage["only_baseline"] == IDS[:2]
    markdown = (run_folder(project) / "summary.md").read_text("utf-8")
    assert "- mc [ckpt]: 2 items only in the baseline, not compared: `01-0000`, `02-0001`" in markdown


def test_clustered_suites_record_clusters_and_widen_their_intervals(project):
    base = run_folder(project, "baseline")
    unclustered = json.loads((base / "summary.json").read_text("utf-8"))["results"][0]
    write_suite(project.path, "  - {metric: accuracy, min: 25}", extra="cluster_by: subject\n")
    project.runpytest("suites", "--model", "replay:base.jsonl")
    clustered = json.loads((run_folder(project) / "summary.json").read_text("utf-8"))["results"][0]
    assert clustered["cluster_by"] == "subject" and clustered["clusters"] == 4
    assert unclustered["cluster_by"] is None and unclustered["clusters"] == 0
    items = (run_folder(project) / "items.jsonl").read_text("utf-8").splitlines()
    assert {json.loads(line)["cluster"] for line in items} == set(SUBJECTS)
    assert "resamples whole clusters of items sharing `subject` (4 clusters)" in (
        run_folder(project) / "summary.md"
    ).read_text("utf-8")


def test_a_cluster_key_no_record_has_is_a_collection_error(project):
    write_suite(project.path, "  - {metric: accuracy, min: 25}", extra="cluster_by: chapter\n")
    result = project.runpytest("suites", "--model", "replay:base.jsonl")
    assert result.ret == 2
    result.stdout.fnmatch_lines(
        ["*suites/mc.yaml: cluster_by 'chapter': record 01-0000 (*mc.jsonl:1) has no tag or field*"]
    )


def test_junit_xml_has_the_gates_as_test_cases_and_item_metrics_as_properties(project):
    result = check(project, "--junitxml", "junit.xml")
    assert result.ret == 1
    suite = ET.parse(project.path / "junit.xml").getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    gate = cases["gate[ckpt:accuracy drop <= 4 vs baseline]"]
    assert gate.get("classname") == "suites.mc.yaml"
    assert "dropped 5.0 > 4" in gate.find("failure").get("message")
    assert cases["gate[ckpt:accuracy >= 25]"].find("failure") is None
    item = cases["mc[ckpt:01-0000]"]
    properties = {p.get("name"): p.get("value") for p in item.iter("property")}
    assert properties == {"metric.accuracy": "0.0"}
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
        (without_items, "*items.jsonl: not found; a baseline needs*"),
        (with_a_broken_line, "*items.jsonl:1: not a JSON record*"),
    ],
)
def test_a_bad_baseline_is_a_usage_error_before_any_model_loads(project, setup, expected):
    folder = setup(baseline_folder(project))
    result = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", str(folder))
    assert result.ret == 4
    result.stderr.fnmatch_lines([expected])
    assert not (project.path / "reports").exists()


def test_an_ambiguous_baseline_model_must_be_chosen(project):
    write_jsonl(project.path / "other.jsonl", predictions(BASELINE_RIGHT, "other"))
    project.runpytest("suites", "--model", "replay:base.jsonl", "--model", "replay:other.jsonl", "--report-dir", "two")
    two = str(run_folder(project, "two"))
    result = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", two)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*several models (base, other) and none is 'ckpt': choose one with --baseline-model*"])
    chosen = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", two, "--baseline-model", "other")
    chosen.stdout.fnmatch_lines(["mc*ckpt*accuracy*-5.0*"])


def test_compare_command_prints_the_same_comparison_without_running_models(project):
    check(project)
    result = project.run(
        sys.executable, "-m", "vnllmtest", "compare", str(baseline_folder(project)), str(run_folder(project))
    )
    assert result.ret == 0
    text = result.stdout.str()
    base, ckpt = baseline_folder(project).name, run_folder(project).name
    assert f"| Dataset | Metric | base ({base}) | ckpt ({ckpt}) |" in text
    assert "| mc | accuracy | 75.0 [" in text
    assert "| mc | accuracy | ckpt | base | 40 | 75.0 [" in text and "| -5.0 [" in text
    assert f"| {mcnemar_exact(4, 2):.3g} (mcnemar) |" in text
    assert "### Flipped items (4 regressions, 2 fixes)" in text
    report_markdown = (run_folder(project) / "summary.md").read_text("utf-8")
    comparison_part = report_markdown[report_markdown.index("### Flipped items") :].split("\n## ")[0]
    assert comparison_part.strip() in text


def test_compare_command_names_the_bad_file_and_exits_2(project):
    broken = project.path / "broken.jsonl"
    broken.write_text('{"suite": "mc", "model": "x", "id": "1", "status": "passed", "metrics": {}}\nnot json\n', "utf-8")
    result = project.run(
        Path(sys.executable).parent / "vnllmtest", "compare", str(baseline_folder(project)), str(broken)
    )
    assert result.ret == 2
    result.stderr.fnmatch_lines(["vnllmtest compare: */broken.jsonl:2: not a JSON record*"])


def test_under_xdist_the_comparison_and_junit_gates_are_the_same(project):
    check(project, "--junitxml", "single.xml")
    single = json.loads((run_folder(project) / "summary.json").read_text("utf-8"))["comparison"]
    result = check(project, "-n", "2", "--junitxml", "xdist.xml")
    assert result.ret == 1
    assert json.loads((run_folder(project) / "summary.json").read_text("utf-8"))["comparison"] == single
    gates = [
        {case.get("name"): case.find("failure") is not None for case in ET.parse(project.path / name).iter("testcase")}
        for name in ("single.xml", "xdist.xml")
    ]
    assert gates[0] == gates[1] and gates[1]["gate[ckpt:accuracy drop <= 4 vs baseline]"] is True
