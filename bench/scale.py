"""Scale: collection plus a replay run of the VMLU test layout (9,833 questions over 58 subjects,
generated from our own sample records) through the real pytest plugin, against a 100-item run of
the same layout, so the difference in peak memory is what 10k items cost.

    python bench/scale.py [--items 9833] [--workdir /tmp/vnllmtest-scale]

Prints a Markdown table: items, wall seconds, items/s and peak RSS of the pytest process."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import measure, vmlu_records

REPO = Path(__file__).resolve().parents[1]
SUITE = """vnllmtest: 1
name: vmlu_scale
task: multiple_choice
dataset: {adapter: vmlu, source: data/vmlu_test.jsonl}
prompt:
  template: |
    Câu hỏi: {{ question }}
    {% for choice in choices %}{{ choice }}
    {% endfor %}Đáp án:
scoring: {mode: generate}
metrics: [accuracy]
item_pass: {metric: accuracy, min: 1}
cluster_by: subject
gates:
  - {metric: accuracy, min: 25, bound: ci_high}
"""


def build_project(folder: Path, count: int) -> None:
    """A project whose suite holds `count` questions (ids SS-NNNN over 58 subjects) and a replay file
    answering each with the gold letter, except every fourth with the next letter."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "suites" / "data").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n", "utf-8")
    (folder / "suites" / "vmlu_scale.yaml").write_text(SUITE, "utf-8")
    with (
        (folder / "suites" / "data" / "vmlu_test.jsonl").open("w", encoding="utf-8") as records,
        (folder / "predictions.jsonl").open("w", encoding="utf-8") as predictions,
    ):
        for number, record in enumerate(vmlu_records(count)):
            records.write(json.dumps(record, ensure_ascii=False) + "\n")
            letters = [choice[0] for choice in record["choices"]]
            answer = record["answer"] if number % 4 else letters[(letters.index(record["answer"]) + 1) % len(letters)]
            predictions.write(json.dumps({"id": record["id"], "prediction": answer}) + "\n")


def run(folder: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `pytest suites/ --model replay:...` in a fresh process."""
    command = [sys.executable, "-m", "pytest", "suites", "--model", "replay:predictions.jsonl", "-q"]
    seconds, peak, _ = measure([*command, "-p", "no:cacheprovider", "--no-cache", "--show-misses", "0"], folder)
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=9833)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-scale"))
    options = parser.parse_args()
    rows = []
    for count in (100, options.items):
        folder = options.workdir / str(count)
        build_project(folder, count)
        seconds, peak = run(folder)
        rows.append((count, seconds, peak))
    print("| Items | Wall (s) | Items/s | Peak RSS (MB) |")
    print("| ---: | ---: | ---: | ---: |")
    for count, seconds, peak in rows:
        print(f"| {count:,} | {seconds:.1f} | {count / seconds:.0f} | {peak:.0f} |")
    print(f"\nMemory growth from {rows[0][0]} to {rows[1][0]:,} items: {rows[1][2] - rows[0][2]:.0f} MB")


if __name__ == "__main__":
    main()
