"""`vnllmtest trend`: checkpoints' run folders made by real pytest runs (tests/trend_runs.py), compared step by
step with the baseline comparison's paired tests, Holm-adjusted; its Markdown, options and errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from trend_runs import HOSTILE_ID, MISSING_ID, tampered, trend_runs

from vnllmtest.cli import main
from vnllmtest.metrics import Estimate, estimate, holm_adjust, mcnemar_exact
from vnllmtest.trend import build_trend, load_points


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trend_runs(tmp_path_factory.getbasetemp() / "trend-runs")


def trend_cli(capsys: pytest.CaptureFixture, *arguments: object) -> tuple[int, str, str]:
    """`vnllmtest trend ...`: (exit status, stdout, stderr)."""
    status = main(["trend", *(str(argument) for argument in arguments)])
    out, err = capsys.readouterr()
    return status, out, err


def checkpoints(runs: dict[str, Path], *labels: str) -> list[Path]:
    return [runs[label] for label in labels]


def test_holm_adjusts_known_vectors():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running maximum 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm_adjust([0.2]) == [0.2] and holm_adjust([]) == []
    assert holm_adjust([0.01, 0.01, 0.01]) == pytest.approx([0.03, 0.03, 0.03])  # ties
    for bad in ([math.nan], [1.5], [-0.1]):
        with pytest.raises(ValueError):
            holm_adjust(bad)


def test_steps_pair_items_by_suite_and_id_and_holm_finds_the_planted_drop_not_the_wobble(runs, tmp_path, capsys):
    paths = checkpoints(runs, "step-1000", "step-2000", "step-3000")
    trend = build_trend(load_points(paths, []), None, 0.05, 200)
    assert [(p.number, p.model, p.run.path) for p in trend.points] == [
        (1, "step-1000", paths[0]), (2, "step-2000", paths[1]), (3, "step-3000", paths[2])
    ]
    assert [(s.point, s.against) for s in trend.steps] == [(1, 0), (2, 1)]
    tests = {(trend.step_name(trend.steps[t.step]), t.difference.suite, t.difference.metric): t for t in trend.tested}
    assert sorted(tests) == [(step, suite, metric) for step in ("2 vs 1", "3 vs 2")
                             for suite, metric in (("mc", "accuracy"), ("qa", "exact_match"), ("qa", "f1"))]
    assert trend.correction == "Holm–Bonferroni across 6 tests"
    adjusted = holm_adjust([t.difference.p_value for t in trend.tested])
    assert [t.adjusted_p for t in trend.tested] == adjusted
    wobble, drop = tests[("2 vs 1", "mc", "accuracy")], tests[("3 vs 2", "mc", "accuracy")]
    assert (wobble.difference.p_value, wobble.difference.test) == (mcnemar_exact(4, 2), "mcnemar")
    assert wobble.difference.difference.value == pytest.approx(-5.0) and not wobble.significant
    assert drop.difference.p_value == mcnemar_exact(16, 0) and drop.adjusted_p < 0.05 and drop.drop
    assert drop.difference.difference.value == pytest.approx(-40.0)
    assert [t.difference.metric for t in trend.drops] == ["accuracy"]
    # the hostile item's miss and recovery (one discordant pair each way) are tested, far from significant
    assert tests[("2 vs 1", "qa", "exact_match")].difference.shared == 12  # đoạn-11 is missing from step-2000
    assert tests[("2 vs 1", "qa", "f1")].difference.test == "permutation"
    flips = [[(f.suite, f.id, f.direction) for f in step.comparison.flips] for step in trend.steps]
    assert flips[0] == [*[("mc", f"q0{n}", "regression") for n in range(4)], ("qa", HOSTILE_ID, "regression"),
                        ("mc", "q30", "fix"), ("mc", "q31", "fix")]
    assert flips[1] == [*[("mc", f"q{n:02d}", "regression") for n in range(4, 20)], ("qa", HOSTILE_ID, "fix")]
    qa_coverage = [next(c for c in s.comparison.coverage if c.suite == "qa") for s in trend.steps]
    assert (qa_coverage[0].only_baseline, qa_coverage[1].only_current) == ([MISSING_ID], [MISSING_ID])
    assert [e.value for e in trend.estimates[("mc", "accuracy")]] == pytest.approx([75.0, 70.0, 30.0])

    status, out, err = trend_cli(capsys, *paths, "--out", tmp_path / "out", "--bootstrap-iterations", 200)
    assert status == 0 and f"wrote {tmp_path / 'out' / 'trend.html'}" in err
    assert (tmp_path / "out" / "trend.md").read_text("utf-8") == out
    assert "Holm–Bonferroni across 6 tests" in out
    mc_row = next(line for line in out.splitlines() if line.startswith("| accuracy |"))
    first, second, third = (e.describe() for e in trend.estimates[("mc", "accuracy")])  # the same 200 resamples
    assert mc_row.split(" | ")[1:] == [first, second, f"**{third} ▼ drop vs 2** |"] and third.startswith("30.0 [")
    assert "| 3 vs 2 | mc | accuracy | 40 | 30.0 [" in out and "| **significant drop** |" in out
    assert "| 2 vs 1 | mc | accuracy | 40 |" in out and out.count("**significant drop**") == 1
    assert "- mc, pass → miss: `q00`, `q01`, `q02`, `q03`" in out
    assert f"- qa, pass → miss: `{HOSTILE_ID}`" in out
    assert f"- qa: 1 item only in point 1, not compared: `{MISSING_ID}`" in out
    assert trend_cli(capsys, *paths, "--out", tmp_path / "out", "--fail-on-drop")[0] == 1
    assert trend_cli(capsys, *paths[:2], "--out", tmp_path / "out", "--fail-on-drop")[0] == 0


def test_a_reference_point_is_compared_with_every_other(runs, tmp_path, capsys):
    paths = checkpoints(runs, "step-1000", "step-2000", "step-3000")
    for reference in ("1", str(paths[0])):
        status, out, _ = trend_cli(capsys, *paths, "--reference", reference, "--out", tmp_path)
        assert status == 0 and "compared with point 1 (step-1000" in out
        assert "| 2 vs 1 | mc | accuracy |" in out and "| 3 vs 1 | mc | accuracy |" in out
        assert "| 3 vs 2 |" not in out and "▼ drop vs 1" in out
    status, out, _ = trend_cli(capsys, *paths, "--reference", "3", "--out", tmp_path)
    columns = "| Point (shared items) | Reference (shared items) | Difference (point − reference) |"
    assert status == 0 and columns in out
    assert "| 1 vs 3 | mc | accuracy | 40 | 75.0 [" in out  # the point first, the reference after it
    for bad, message in (("4", "choose a point from 1 to 3"), (str(tmp_path), "not one of the runs given")):
        status, out, err = trend_cli(capsys, *paths, "--reference", bad, "--out", tmp_path)
        assert (status, out) == (2, "") and message in err


def test_model_chooses_within_folders_that_hold_several(runs, tmp_path, capsys):
    paths = checkpoints(runs, "step-2000", "step-4000")
    status, out, err = trend_cli(capsys, *paths, "--out", tmp_path)
    assert (status, out) == (2, "")
    assert f"{paths[1]}: the run holds several models (step-4000, base): choose with --model" in err
    status, _, err = trend_cli(capsys, *paths, "--model", "base", "--out", tmp_path)
    assert status == 2 and f"{paths[0]}: no results for model 'base'; the run holds step-2000" in err
    status, out, _ = trend_cli(capsys, *paths, "--model", "step-2000", "--model", "base", "--out", tmp_path)
    assert status == 0 and "| 2 | base |" in out and "▼ drop vs 1" in out
    status, _, err = trend_cli(capsys, *paths, *paths[:1], "--model", "a", "--model", "b", "--out", tmp_path)
    assert status == 2 and "--model given 2 times for 3 runs" in err


def test_a_metric_whose_definition_changed_is_shown_not_tested(runs, tmp_path, capsys):
    changed = shutil.copytree(runs["step-2000"], tmp_path / "changed")
    summary = json.loads((changed / "summary.json").read_text("utf-8"))
    version = summary["metric_definitions"]["f1"]
    summary["metric_definitions"]["f1"] = version + 1
    (changed / "summary.json").write_text(json.dumps(summary), "utf-8")
    status, out, _ = trend_cli(capsys, runs["step-1000"], changed / "items.jsonl", "--out", tmp_path)
    assert status == 0 and "Holm–Bonferroni across 2 tests" in out  # accuracy, exact_match
    reason = f"not tested: definition changed (point 1 v{version}, point 2 v{version + 1})"
    assert f"| 2 vs 1 | qa | f1 | — | — | — | — | — | — | {reason} |" in out
    f1_row = next(line for line in out.splitlines() if line.startswith("| f1 |"))
    assert f"100.0 [100.0, 100.0] (v{version}) |" in f1_row and f"(v{version + 1}) |" in f1_row


def test_runs_that_cannot_be_used_exit_2_naming_the_file(runs, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    status, out, err = trend_cli(capsys, runs["step-1000"], missing, "--out", tmp_path)
    assert (status, out) == (2, "") and f"{missing}: no such run folder or file" in err
    broken = shutil.copytree(runs["step-1000"], tmp_path / "broken")
    with (broken / "items.jsonl").open("a", encoding="utf-8") as items:
        items.write("{not json\n")
    lines = (broken / "items.jsonl").read_text("utf-8").count("\n")
    status, _, err = trend_cli(capsys, broken, runs["step-2000"], "--out", tmp_path)
    assert status == 2 and f"{broken / 'items.jsonl'}:{lines}: not a JSON record" in err
    assert not (tmp_path / "trend.html").exists()
    with pytest.raises(SystemExit) as usage:
        trend_cli(capsys, runs["step-1000"])
    assert usage.value.code == 2 and "usage: vnllmtest trend " in (err := capsys.readouterr().err)
    assert "trend needs at least two runs" in err
    blocked = tmp_path / "file"
    blocked.write_text("", "utf-8")
    status, _, err = trend_cli(capsys, runs["step-1000"], runs["step-2000"], "--out", blocked)
    assert status == 2 and f"{blocked}: cannot write the trend" in err


def test_a_step_that_tests_nothing_says_so_and_fails_the_drop_gate(runs, tmp_path, capsys):
    renamed = tampered(runs["step-2000"], tmp_path / "renamed", lambda record: {**record, "id": "x" + record["id"]})
    status, out, err = trend_cli(capsys, runs["step-1000"], renamed, "--out", tmp_path, "--fail-on-drop")
    assert status == 1 and "step 2 vs 1 tested nothing (no shared items): --fail-on-drop cannot pass it" in err
    assert "**Step 2 vs 1 tested nothing (no shared items). No significant drop among the steps tested " in out
    for suite, metric in (("mc", "accuracy"), ("qa", "exact_match"), ("qa", "f1")):
        assert f"| 2 vs 1 | {suite} | {metric} | {' | '.join(['—'] * 6)} | not tested: no shared items |" in out
    status, _, err = trend_cli(capsys, runs["step-1000"], renamed, "--out", tmp_path)
    assert status == 0 and "step 2 vs 1 tested nothing" in err


def later_point(record: dict) -> dict:
    """mc items also scored on f1; q05 not scored on accuracy, q06 an error; qa renamed `hỏi-đáp`."""
    if record["suite"] == "qa":
        return {**record, "suite": "hỏi-đáp"}
    metrics = {**record["metrics"], "f1": record["metrics"]["accuracy"]}
    if record["id"] == "q05":
        del metrics["accuracy"]
    return {**record, "metrics": {} if record["id"] == "q06" else metrics, "status": {"q06": "error"}.get(
        record["id"], record["status"])}


def test_metrics_only_one_point_has_are_listed_not_tested_and_items_without_a_value_counted(runs, tmp_path, capsys):
    later = tampered(runs["step-2000"], tmp_path / "later", later_point)
    status, out, _ = trend_cli(capsys, runs["step-1000"], later, "--out", tmp_path, "--fail-on-drop")
    assert status == 0 and "Holm–Bonferroni across 1 test)" in out  # mc accuracy
    mc = out.split("## mc")[1].split("## qa")[0].splitlines()
    accuracy, f1 = (next(line for line in mc if line.startswith(f"| {m} |")) for m in ("accuracy", "f1"))
    assert accuracy.endswith(" (2 without a value) |") and f1.startswith("| f1 | n/a (40 without a value) | ")
    assert f1.endswith(" (1 without a value) |")
    assert "| 2 vs 1 | mc | accuracy | 38 |" in out
    assert "| 2 vs 1 | mc | f1 | — | — | — | — | — | — | not tested: no value in point 1 |" in out
    only_first = "not tested: no shared items (only point 1 has qa results)"
    assert f"| 2 vs 1 | qa | f1 | — | — | — | — | — | — | {only_first} |" in out
    only_second = "not tested: no shared items (only point 2 has hỏi-đáp results)"
    assert f"| 2 vs 1 | hỏi-đáp | exact_match | — | — | — | — | — | — | {only_second} |" in out


def test_points_use_the_bootstrap_their_runs_recorded(runs, tmp_path, capsys):
    recorded = shutil.copytree(runs["step-1000"], tmp_path / "recorded")
    summary = json.loads((recorded / "summary.json").read_text("utf-8"))
    summary["manifest"]["options"].update(bootstrap_iterations=30, bootstrap_seed=7)
    (recorded / "summary.json").write_text(json.dumps(summary), "utf-8")
    trend = build_trend(load_points([runs["step-2000"], recorded], []), None, 0.05, 50)
    stored = json.loads((runs["step-2000"] / "summary.json").read_text("utf-8"))
    reported = {(r["suite"], m): e for r in stored["results"] for m, e in r["metrics"].items()}
    for key, estimates in trend.estimates.items():  # 1,000 resamples, seed 0, as its report did, not 50
        assert [getattr(estimates[0], f) for f in ("value", "low", "high", "n")] == list(reported[key].values())
    values = sorted((item.id, item.metrics["accuracy"]) for item in trend.points[1].run.items if item.suite == "mc")
    assert trend.estimates[("mc", "accuracy")][1] == estimate([v for _, v in values], scale=100, iterations=30, seed=7)
    summary["manifest"]["options"]["bootstrap_seed"] = "7"
    (recorded / "summary.json").write_text(json.dumps(summary), "utf-8")
    status, _, err = trend_cli(capsys, runs["step-2000"], recorded, "--out", tmp_path)
    assert status == 2 and f"{recorded / 'summary.json'}: field 'manifest.options.bootstrap_seed': expected" in err
    # compare reads runs through the same estimates: its table shows each run's reported values, and the same error
    assert main(["compare", str(runs["step-1000"]), str(runs["step-2000"]), "--bootstrap-iterations", "50"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| mc | accuracy |"))
    assert row.split(" | ")[3].startswith(Estimate(*reported[("mc", "accuracy")].values()).describe())
    assert main(["compare", str(runs["step-2000"]), str(recorded)]) == 2
    assert "field 'manifest.options.bootstrap_seed'" in capsys.readouterr().err


def test_run_text_stays_on_its_line_and_ids_keep_their_backticks(runs, tmp_path, capsys):
    def hostile(label: str, record: dict) -> dict:
        suite = "qa\n| x" if record["suite"] == "qa" else record["suite"]
        odd = "q`0``|1" if record["id"] == "q01" and label == "later" else record["id"]
        return {**record, "model": f"step\n{label}", "suite": suite, "id": odd}

    first = tampered(runs["step-1000"], tmp_path / "first", lambda record: hostile("first", record))
    later = tampered(runs["step-2000"], tmp_path / "later", lambda record: hostile("later", record))
    status, out, err = trend_cli(capsys, first, later, first, "--out", tmp_path)
    assert status == 0 and "## qa | x\n" in out and "| 2 vs 1 | qa \\| x | exact_match | 12 |" in out
    assert "| 1 | step first | first |" in out
    assert "### Step 2 vs 1: step later (later) against step first (first)" in out
    assert "- mc: 1 item only in point 2, not compared: ```q`0``|1```" in out
    assert "- Note: points 1 and 3 are the same run (step first (first))" in out
    assert not [line for line in out.splitlines() if line.startswith("| x")]


def test_a_binary_metric_with_another_value_is_an_error_naming_the_line(runs, tmp_path, capsys):
    def halved(record: dict) -> dict:
        return {**record, "metrics": {"accuracy": 0.5}} if record["id"] == "q07" else record

    broken = tampered(runs["step-2000"], tmp_path / "broken", halved)
    status, out, err = trend_cli(capsys, runs["step-1000"], broken, "--out", tmp_path)
    assert (status, out) == (2, "")
    lines = (broken / "items.jsonl").read_text("utf-8").splitlines()
    line = next(number for number, text in enumerate(lines, 1) if '"q07"' in text)
    expected = f"{broken / 'items.jsonl'}:{line}: metric 'accuracy' is declared binary (0 or 1) but has the value 0.5"
    assert expected in err
    assert main(["compare", str(broken), str(runs["step-1000"])]) == 2  # read by the same check as every stored run
    assert f"{broken / 'items.jsonl'}:{line}: metric 'accuracy' is declared binary" in capsys.readouterr().err


def test_a_report_folder_of_runs_is_named_with_its_newest_run(runs, tmp_path, capsys):
    status, _, err = trend_cli(capsys, runs["step-1000"].parent, runs["step-2000"], "--out", tmp_path)
    assert status == 2
    assert f"{runs['step-1000'].parent} holds runs, not a run: name one of them (the newest: {runs['step-1000']})" in err
