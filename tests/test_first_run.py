"""The first run: bundled samples sized for a few minutes on a CPU yet covering every suite and category,
and the bundled judge's smaller budgets (its alias's `judge_limits`), which real judges never get."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from support import ScriptedJudge
from test_judge_prompts import CANDIDATES, CLUSTER, INSTRUCTION

from vnllmtest.backends import ModelError
from vnllmtest.backends.registry import JudgeLimits, aliases_from_file, load_aliases, parse_model_specs
from vnllmtest.evaluation import ScoreJob
from vnllmtest.grading import JudgeScorer
from vnllmtest.judging import judge_all
from vnllmtest.loaders import DataOptions, load_data, vims, vtsnlp
from vnllmtest.loaders.base import RawRecord
from vnllmtest.runner import Runner
from vnllmtest.suite import load_suite

REPO = Path(__file__).resolve().parents[1]
UNREADABLE = ("Không chấm được.", "stop")


def jobs() -> list[ScoreJob]:
    """Our own cluster and instruction, each with a candidate answer, as the seed suites judge them."""
    vims_suite, vtsnlp_suite = (load_suite(REPO / "suites" / f"{name}.yaml") for name in ("vims", "vtsnlp"))
    cluster = vims.to_item(RawRecord("ours", CLUSTER), vims_suite.spec.dataset.options)
    instruction = vtsnlp.to_item(RawRecord("ours", INSTRUCTION), {})
    return [
        ScoreJob(vims_suite, cluster, "ung_vien", CANDIDATES["vims"]),
        ScoreJob(vtsnlp_suite, instruction, "ung_vien", CANDIDATES["vtsnlp"]),
    ]


def judged_by(alias: str, plain: bool) -> ScriptedJudge:
    """The judge's requests when the engine's JudgeScorer runs it as `alias` (first attempt and retry)."""
    [spec] = parse_model_specs([alias], load_aliases())
    judge = ScriptedJudge([UNREADABLE] * 4, plain=plain)
    judge.label = spec.label
    JudgeScorer([spec]).score(judge, jobs(), Runner(), None)
    return judge


@pytest.mark.parametrize("plain", [False, True])
def test_a_real_judge_gets_the_budgets_the_suites_declare(plain):
    """SeaLLMs (the default judge) has no limits: its prompts are those of judge_all without any,
    which the golden prompt files pin, and its reply budget is the suite's (or the primed cap)."""
    judge = judged_by("seallms-v3-7b", plain)
    unlimited = ScriptedJudge([UNREADABLE] * 4, plain=plain)
    judge_all(unlimited, jobs(), Runner())
    assert [r.prompt for r in judge.requests] == [r.prompt for r in unlimited.requests]
    assert [r.max_new_tokens for r in judge.requests] == [128 if plain else 512] * 4
    assert "Điện lực tỉnh" not in judge.requests[0].prompt  # the articles cut at the suite's 600 tokens


def test_the_bundled_judge_reads_shorter_sections_and_writes_shorter_replies():
    limits = load_aliases()["gemma3-270m"].judge_limits
    assert limits == JudgeLimits(max_tokens_per_section=160, max_new_tokens=48)
    judge = judged_by("gemma3-270m", plain=True)
    assert [r.max_new_tokens for r in judge.requests] == [48] * 4  # both suites, first attempt and the retry
    full = ScriptedJudge([UNREADABLE] * 4, plain=True)
    verdicts = judge_all(full, jobs(), Runner(), limits=limits)
    # The scripted judge counts characters as tokens: every section holds at most 160 of them.
    for verdict in verdicts:
        assert verdict.truncated_sections and all(c["tokens_after"] <= 160 for c in verdict.truncated_sections)
    assert all(len(r.prompt) < len(u.prompt) for r, u in zip(judge.requests, judged_by("seallms-v3-7b", True).requests))
    # unreadable replies stay counted: no verdict, an error, retried once
    assert all(v.scores is None and v.error.startswith("judge_error") and len(v.raw_outputs) == 2 for v in verdicts)


def test_judge_limits_only_lower_a_budget():
    """A limit above the suite's budget changes nothing; --max-new-tokens below the limit still wins."""
    high = ScriptedJudge([UNREADABLE] * 4)
    judge_all(high, jobs(), Runner(), limits=JudgeLimits(max_tokens_per_section=5000, max_new_tokens=5000))
    unlimited = ScriptedJudge([UNREADABLE] * 4)
    judge_all(unlimited, jobs(), Runner())
    shown = [(r.prompt, r.max_new_tokens) for r in high.requests]
    assert shown == [(r.prompt, r.max_new_tokens) for r in unlimited.requests]
    capped = ScriptedJudge([UNREADABLE] * 4)
    judge_all(capped, jobs(), Runner(), 16, JudgeLimits(max_new_tokens=48))
    assert {r.max_new_tokens for r in capped.requests} == {16}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("judge_limits: {max_tokens_per_section: 0}", "max_tokens_per_section must be a whole number of at least 1"),
        ("judge_limits: {max_new_tokens: true}", "max_new_tokens must be a whole number of at least 1, got True"),
        ("judge_limits: {reply: 48}", "must be a mapping with max_tokens_per_section and/or max_new_tokens"),
        ("judge_limits: 48", "must be a mapping with max_tokens_per_section and/or max_new_tokens, got 48"),
    ],
)
def test_bad_judge_limits_name_the_file_alias_and_field(tmp_path, entry, message):
    path = tmp_path / "aliases.yaml"
    path.write_text(f"tiny:\n  hf: org/tiny\n  {entry}\n", encoding="utf-8")
    with pytest.raises(ModelError, match=re.escape(f"{path}: alias 'tiny': judge_limits") + ".*" + re.escape(message)):
        load_aliases([aliases_from_file(path)])


def test_every_bundled_sample_keeps_ten_items_and_every_vtsnlp_category():
    counts = {}
    for name in ("vmlu", "visquad2", "vims", "vtsnlp"):
        counts[name] = load_data(load_suite(REPO / "suites" / f"{name}.yaml"), DataOptions(mode="sample")).entries
    sizes = {name: len(items) for name, items in counts.items()}
    assert sizes == {"vmlu": 30, "visquad2": 30, "vims": 10, "vtsnlp": 11}
    with (REPO / "tests" / "data" / "vtsnlp_rows.csv").open(encoding="utf-8", newline="") as handle:
        categories = {row["category"] for row in csv.DictReader(handle)}
    assert len(categories) == 11 and {item.tags["category"] for item in counts["vtsnlp"]} == categories
