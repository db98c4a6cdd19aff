"""Models that fail mid-run, end to end with the real transformers backend and a tiny model. Faults are
injected by a conftest.py in the test project (a pytest hook), never by replacing the loading code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import INNER_RUN_INI, QA_SUITE, write_jsonl

COUNT = 6
SUITE = QA_SUITE + "gates:\n  - {metric: f1, min: 0}\n"
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


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INNER_RUN_INI)
    records = [
        {"id": f"qa-{n:02d}", "context": f"Hà Nội số {n}.", "question": "Ở đâu?", "answers": {"text": ["Hà Nội"]}}
        for n in range(COUNT)
    ]
    write_jsonl(pytester.path / "suites" / "data" / "qa.jsonl", records)
    (pytester.path / "suites" / "qa.yaml").write_text(SUITE, encoding="utf-8")
    predictions = [{"id": record["id"], "prediction": "Hà Nội", "model": "other"} for record in records]
    write_jsonl(pytester.path / "preds.jsonl", predictions)
    return pytester


def inject(project: pytest.Pytester, fault: str) -> Path:
    method, code = FAULTS[fault]
    return project.makeconftest(CONFTEST.format(method=method, fault=code))


def latest(project: pytest.Pytester) -> tuple[dict, list[dict]]:
    run = sorted((project.path / "reports").iterdir())[-1]
    items = [json.loads(line) for line in (run / "items.jsonl").read_text("utf-8").splitlines()]
    return json.loads((run / "summary.json").read_text("utf-8")), items


def test_a_model_that_crashes_mid_run_errors_only_that_batch_and_the_other_model_still_reports(project, tiny_model_dir):
    inject(project, "crash")
    args = ["suites", f"--model={tiny_model_dir}", "--model=replay:preds.jsonl", "--batch-size", "1"]
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR model_error: model '*' failed on this batch: RuntimeError: CUDA error*"])
    summary, items = latest(project)
    tiny = [item for item in items if item["model"] != "other"]
    [crashed] = [item for item in tiny if item["status"] == "error"]
    assert crashed["id"] == "qa-03" and crashed["failure_class"] == "model_error"
    assert all(item["output"] is not None for item in tiny if item is not crashed)
    assert [item["status"] for item in items if item["model"] == "other"] == ["passed"] * COUNT
    assert [(r["model"], r["statuses"]["error"]) for r in summary["results"]] == [("other", 0), (tiny[0]["model"], 1)]

    (project.path / "conftest.py").unlink()  # the device is healthy again
    assert project.runpytest(*args).ret == 0
    _, again = latest(project)
    recomputed = [item["id"] for item in again if item["model"] == tiny[0]["model"] and not item["cached"]]
    assert recomputed == ["qa-03"], "finished items were computed again"


def test_out_of_memory_backs_off_to_smaller_batches_and_the_manifest_lists_it(project, tiny_model_dir):
    inject(project, "small_memory")
    args = ["suites", f"--model={tiny_model_dir}", "--no-cache"]
    assert project.runpytest(*args, "--batch-size", "4").ret == 0
    summary, items = latest(project)
    assert all(item["status"] != "error" for item in items) and len(items) == COUNT
    [back_off] = summary["manifest"]["batch_back_offs"]
    assert (back_off["failed_size"], back_off["retry_size"]) == (4, 2)
    assert back_off["description"].startswith("qa × ")
    assert back_off["error"].startswith("OutOfMemoryError: CUDA out of memory")

    (project.path / "conftest.py").unlink()
    assert project.runpytest(*args, "--batch-size", "2").ret == 0  # the batches the back-off ended with
    _, unconstrained = latest(project)
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
    summary, items = latest(project)
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
