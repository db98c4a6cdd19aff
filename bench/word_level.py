"""How far the word-level scores (underthesea segmentation) are from the syllable-level ones, on the answers of
real runs: for every suite and model in the given run folders, each syllable-level metric the run reported
(f1, rouge_1, rouge_2, rouge_l) beside its word-level counterpart computed from the same answers and references.
Needs the `words` extra.

    python bench/word_level.py RUN_FOLDER [RUN_FOLDER ...] [--suites-dir suites]

The abstention phrases come from the suite file (suites-dir/NAME.yaml); each item's syllable-level value is
computed again and must equal the run's, so a suite file that changed since the run stops the bench. Prints a
Markdown table: both values with 95% bootstrap CIs and their paired difference (clusters resampled as the run
did), the items scored and the share of items whose two values differ."""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from vnllmtest.metric_table import metric_info
from vnllmtest.metrics.stats import estimate
from vnllmtest.suite import load_suite

REPO = Path(__file__).resolve().parents[1]
WORD_LEVEL = {"f1": "f1_word", "rouge_1": "rouge_1_word", "rouge_2": "rouge_2_word", "rouge_l": "rouge_l_word"}
HEADER = ["Suite", "Model", "Metric", "Items", "Syllables", "Words", "Words - syllables", "Items differing", "Lower"]


def grouped_items(folders: list[Path]) -> dict[tuple[str, str], list[dict]]:
    """Items of every run folder by (suite, model)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for folder in folders:
        for line in (folder / "items.jsonl").read_text("utf-8").split("\n"):
            if line:
                item = json.loads(line)
                groups[(item["suite"], item["model"])].append(item)
    return groups


def rows(suite: str, model: str, items: list[dict], abstentions: list[str]) -> list[list[str]]:
    """One table row per syllable-level metric the run reported for this group."""
    found = []
    for syllable_name, word_name in WORD_LEVEL.items():
        scored = [item for item in items if syllable_name in item["metrics"]]
        if not scored:
            continue
        syllable = [item["metrics"][syllable_name] for item in scored]
        for item, value in zip(scored, syllable, strict=True):
            again = metric_info(syllable_name).compute(item["answer"], item["references"], abstentions)
            if abs(again - value) > 1e-9:
                raise SystemExit(f"{suite} item {item['id']}: {syllable_name} is {again} now, {value} in the run")
        word = [metric_info(word_name).compute(item["answer"], item["references"], abstentions) for item in scored]
        difference = [w - s for w, s in zip(word, syllable, strict=True)]
        clusters = [item["cluster"] or item["id"] for item in scored]
        differing = [d for d in difference if abs(d) > 1e-9]
        syllables, words, change = (estimate(v, scale=100, clusters=clusters) for v in (syllable, word, difference))
        found.append([
            suite, model, f"{syllable_name} / {word_name}", f"{len(scored)} of {len(items)}",
            syllables.describe(), words.describe(), change.describe(signed=True),
            f"{len(differing) / len(scored):.0%}", f"{sum(d < 0 for d in differing) / len(scored):.0%}",
        ])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with items.jsonl)")
    parser.add_argument("--suites-dir", type=Path, default=REPO / "suites", help="where suites/NAME.yaml are")
    options = parser.parse_args()
    started = time.perf_counter()
    table = []
    for (suite, model), items in sorted(grouped_items(options.runs).items()):
        abstentions = list(load_suite(options.suites_dir / f"{suite}.yaml").spec.scoring.abstentions)
        table += rows(suite, model, items, abstentions)
    print("| " + " | ".join(HEADER) + " |")
    print("| " + " | ".join(["---"] * 3 + ["---:"] * (len(HEADER) - 3)) + " |")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print(f"\nItems: scored of all the run's items (errors have no value). Lower: items where the word level is lower."
          f"\nComputed in {time.perf_counter() - started:.1f} s (underthesea's import and segmentation included).")


if __name__ == "__main__":
    main()
