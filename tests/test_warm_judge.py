"""A warm cache answers the judge too: its prompts (with their sections' cuts) and verdicts cached, so that a
judged run the cache answers imports neither torch, transformers nor tokenizers and records what the cold run
did; and the judge prompt's key changes with the rubric, a section's budget and the retry (real tiny model
folders, real suite files, real pytest runs)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from vnllmtest.backends import HFSettings, load_backend
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.cache import PredictionCache
from vnllmtest.judge_rendering import Ask, Section, judge_prompts
from vnllmtest.rubrics import Rubric
from vnllmtest.suite import load_suite

from support import SUMMARY_JUDGE, cold_then_warm, write_suite

TOPICS = ["Bão số 3 đổ bộ Quảng Ninh", "Giá xăng giảm lần thứ ba", "Khai trương metro số 1"]
SUMMARIES = [
    {"id": f"c{n}", "documents": [{"title": t, "content": f"{t} hôm nay."}], "summaries": [f"{t} hôm nay."]}
    for n, t in enumerate(TOPICS)
]
BACKGROUND = " ".join(["Bản tin thời sự buổi sáng về các sự kiện trong nước và quốc tế."] * 8)
JUDGE = {
    **SUMMARY_JUDGE,
    "sees": [*SUMMARY_JUDGE["sees"], {"title": "Bối cảnh", "text": BACKGROUND, "max_tokens": 12}],
    "max_new_tokens": 6,
}
SUITE = {"task": "summarization", "generation": {"max_new_tokens": 4}, "judge": JUDGE}


@pytest.mark.project(suites={"tomtat": SUITE}, records={"tomtat.jsonl": SUMMARIES})
def test_a_judged_run_the_cache_answers_imports_neither_torch_nor_transformers(project, tiny_model_dir):
    model = tiny_model_dir
    first, second = cold_then_warm(project, "suites", f"--model={model}", f"--judge={model}", "-p", "no:cacheprovider")
    assert all(item["cached"] for item in second.items)
    assert [{**item, "cached": True} for item in first.items] == second.items  # judge prompts' cuts and scores too
    judged = [item["judges"][0] for item in second.items]
    assert len(judged) == len(SUMMARIES) and all(verdict["raw_outputs"] for verdict in judged)
    assert all(cut["section"] == "Bối cảnh" for verdict in judged for cut in verdict["truncated_sections"])
    assert all(verdict["truncated_sections"] for verdict in judged)


def prompt_rows(folder: Path) -> int:
    with sqlite3.connect(folder / "predictions.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0]


def test_the_judge_prompt_key_changes_with_the_rubric_a_budget_and_the_retry(tiny_model_dir, tmp_path):
    judge = load_backend(parse_model_spec(str(tiny_model_dir)), HFSettings(device="cpu"))
    cache = PredictionCache(tmp_path / "cache")
    rubric: Rubric = load_suite(write_suite(tmp_path, "tomtat", SUITE)).spec.judge.resolved_rubric
    sections = (Section("Bản tóm tắt", "Bão số 3 đổ bộ.", 64), Section("Bối cảnh", BACKGROUND, 12))
    base = Ask(rubric, sections)
    [first] = judge_prompts(judge, [base], False, cache)
    assert prompt_rows(tmp_path / "cache") == 1 and first.truncated_sections[0]["section"] == "Bối cảnh"
    assert judge_prompts(judge, [base], False, cache) == [first]  # read back, not stored again
    assert prompt_rows(tmp_path / "cache") == 1
    other_rubric = replace(rubric, description="Chấm thật khắt khe.")
    wider = Ask(rubric, (sections[0], Section("Bối cảnh", BACKGROUND, 20)))
    changed = {
        "rubric": judge_prompts(judge, [Ask(other_rubric, sections)], False, cache)[0],
        "budget": judge_prompts(judge, [wider], False, cache)[0],
        "retry": judge_prompts(judge, [base], True, cache)[0],
    }
    assert prompt_rows(tmp_path / "cache") == 1 + len(changed)
    assert len({first.text, *(prompt.text for prompt in changed.values())}) == 1 + len(changed)
    assert "Chấm thật khắt khe." in changed["rubric"].text
    assert changed["budget"].truncated_sections[0]["max_tokens"] == 20
