"""ViQuAD's reply budget on real records (`../shared/data`): `generation.max_new_tokens` holds at least
99% of the gold answers, and every abstention phrase, in the bundled Gemma tokenizer's tokens.

Skipped where the shared data is absent (set VNLLMTEST_SHARED_DATA to a copy elsewhere).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vnllmtest.metrics import normalize_text
from vnllmtest.suite import load_suite

from support import REPO

SHARED = Path(os.environ.get("VNLLMTEST_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
RECORDS = SHARED / "viquad2" / "viquad2_subset1000.jsonl"
pytestmark = pytest.mark.skipif(not RECORDS.is_file(), reason=f"ViQuAD records not found at {RECORDS}")
SPEC = load_suite(REPO / "suites" / "visquad2.yaml").spec


@pytest.fixture(scope="module")
def gemma_tokenizer():
    """The bundled Gemma 3 270M's tokenizer (its converted folder; the weights are not loaded)."""
    from transformers import AutoTokenizer

    from vnllmtest.backends import bundled

    folder, _ = bundled.materialize("gemma3-270m")
    return AutoTokenizer.from_pretrained(folder)


def gold_answers() -> list[str]:
    with RECORDS.open(encoding="utf-8") as handle:
        return [answer for line in handle if line.strip() for answer in json.loads(line)["answers"]["text"]]


def reply_tokens(tokenizer, answer: str) -> int:
    """New tokens a reply with this answer takes: after "Trả lời:" a space, the answer, then the newline
    that stops generation (a reply that has not reached it by the budget is cut: `truncated`)."""
    return len(tokenizer(f" {answer}\n", add_special_tokens=False).input_ids)


def test_the_budget_holds_99_percent_of_the_gold_answers(gemma_tokenizer):
    lengths = [reply_tokens(gemma_tokenizer, answer) for answer in gold_answers()]
    assert len(lengths) == 800
    budget = SPEC.generation.max_new_tokens
    covered = sum(length <= budget for length in lengths) / len(lengths)
    assert covered >= 0.99, f"max_new_tokens {budget} holds {covered:.2%} of the gold answers"


def test_the_budget_holds_every_abstention_phrase(gemma_tokenizer):
    budget = SPEC.generation.max_new_tokens
    for phrase in SPEC.scoring.abstentions:
        assert reply_tokens(gemma_tokenizer, f"Trả lời: {phrase.capitalize()}.") <= budget, phrase


def test_no_gold_answer_is_an_abstention_phrase():
    """A gold answer spelled like a declared phrase could never be matched: the reply would abstain."""
    phrases = {normalize_text(phrase) for phrase in SPEC.scoring.abstentions}
    assert not [answer for answer in gold_answers() if normalize_text(answer) in phrases]
