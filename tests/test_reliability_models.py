"""Models that fail mid-run, end to end with the real transformers backend and a tiny model. Faults are
injected by a conftest.py in the test project (a pytest hook), never by replacing the loading code."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SHORT_QA, read_run, replay_rows, short_questions

COUNT = 6
RECORDS = short_questions("qa-", COUNT)
FAULTS = {  # the HFBackend method replaced, and its faulty version
    "crash": (
        "generate",
        """
def faulty(self, requests):
    if any(request.item_id == "qa-03" for request in requests):
        raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
    return real(self, requests)
""",
    ),
    "small_memory": (
        "generate",
        """
def faulty(self, requests):
    if len(requests) > 2:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
    return real(self, requests)
""",
    ),
    "bug": (
        "format_prompt",
        """
def faulty(self, messages, thinking=False):
    raise KeyError("a bug outside the batch loop (injected)")
""",
    ),
}
CONFTEST = '''"""Fault injection into the real transformers backend, for this test project's runs only."""
import torch

from vnllmtest.backends.hf import HFBackend

real = HFBackend.{method}
{fault}

def pytest_configure(config):
    HFBackend.{method} = faulty


def pytest_unconfigure(config):
    HFBackend.{method} = real
'''


# "other" replays right answers beside the tiny model.
pytestmark = pytest.mark.project(
    suites={"qa": {**SHORT_QA, "gates": [{"metric": "f1", "min": 0}]}},
    records={"qa.jsonl": RECORDS},
    predictions={"preds": replay_rows({record["id"]: "Hà Nội" for record in RECORDS}, model="other")},
)


def inject(project: pytest.Pytester, fault: str) -> Path:
    method, code = FAULTS[fault]
    return project.makeconftest(CONFTEST.format(method=method, fault=code))


def test_a_model_that_crashes_mid_run_errors_only_that_batch_and_the_other_model_still_reports(project, tiny_model_dir):
    inject(project, "crash")
    args = ["suites", f"--model={tiny_model_dir}", "--model=replay:preds.jsonl", "--batch-size", "1"]
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR model_error: model '*' failed on this batch: RuntimeError: CUDA error*"])
    run = read_run(project.path)
    summary, items = run.summary, run.items
    tiny = [item for item in items if item["model"] != "other"]
    [crashed] = [item for item in tiny if item["status"] == "error"]
    assert crashed["id"] == "qa-03" and crashed["failure_class"] == "model_error"
    assert all(item["output"] is not None for item in tiny if item is not crashed)
    assert [item["status"] for item in items if item["model"] == "other"] == ["passed"] * COUNT
    assert [(r["model"], r["statuses"]["error"]) for r in summary["results"]] == [("other", 0), (tiny[0]["model"], 1)]

    (project.path / "conftest.py").unlink()  # the device is healthy again
    assert project.runpytest(*args).ret == 0
    again = read_run(project.path).items
    recomputed = [item["id"] for item in again if item["model"] == tiny[0]["model"] and not item["cached"]]
    assert recomputed == ["qa-03"], "finished items were computed again"


def test_out_of_memory_backs_off_to_smaller_batches_and_the_manifest_lists_it(project, tiny_model_dir):
    inject(project, "small_memory")
    args = ["suites", f"--model={tiny_model_dir}", "--no-cache"]
    assert project.runpytest(*args, "--batch-size", "4").ret == 0
    run = read_run(project.path)
    summary, items = run.summary, run.items
    assert all(item["status"] != "error" for item in items) and len(items) == COUNT
    [back_off] = summary["manifest"]["batch_back_offs"]
    assert (back_off["failed_size"], back_off["retry_size"]) == (4, 2)
    assert back_off["description"].startswith("qa × ")
    assert back_off["error"].startswith("OutOfMemoryError: CUDA out of memory")

    (project.path / "conftest.py").unlink()
    assert project.runpytest(*args, "--batch-size", "2").ret == 0  # the batches the back-off ended with
    unconstrained = read_run(project.path).items
    assert [item["output"] for item in unconstrained] == [item["output"] for item in items]


def test_an_unexpected_exception_fails_only_its_items_and_the_run_still_reports(project, tiny_model_dir):
    """A bug outside the batch loop is shown as the items' failure with its traceback, never an INTERNALERROR
    that would end the session without a report."""
    inject(project, "bug")
    result = project.runpytest("suites", f"--model={tiny_model_dir}", "--model=replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "INTERNALERROR" not in result.stdout.str()
    assert result.parseoutcomes() == {"failed": COUNT, "passed": COUNT}
    result.stdout.fnmatch_lines(["*KeyError: 'a bug outside the batch loop (injected)'*"])
    run = read_run(project.path)
    summary, items = run.summary, run.items
    failed = [item for item in items if item["model"] != "other"]
    assert [(item["model"], item["status"]) for item in items if item["model"] == "other"] == [
        ("other", "passed")
    ] * COUNT
    assert len(failed) == COUNT and {(item["status"], item["failure_class"]) for item in failed} == {
        ("error", "internal_error")
    }
    assert "KeyError: 'a bug outside the batch loop (injected)'" in failed[0]["message"]
    gates = {result["model"]: result["gates"][0] for result in summary["results"]}
    assert gates["other"]["passed"] and not [g for m, g in gates.items() if m != "other"][0]["passed"]
