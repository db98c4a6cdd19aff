"""Sampling a VTSNLP-sized source: collection of the vtsnlp suite (10 rows per category) from a CSV
of one million rows in the dataset's layout, generated from our own sample rows, against the same
from 10,000 rows. Sampling streams, so memory stays flat while the rows read grow a hundredfold.

    python bench/large_source.py [--rows 1000000] [--workdir /tmp/vnllmtest-large]

Prints a Markdown table: rows read, wall seconds of `pytest --collect-only`, rows/s, peak RSS."""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
from pathlib import Path

from common import measure

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "suites" / "data" / "vtsnlp_sample.csv"


def build_project(folder: Path, rows: int) -> None:
    """The bundled vtsnlp suite over `rows` rows: our sample rows repeated, each made unique."""
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        samples = list(csv.DictReader(handle))
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "suites").mkdir(parents=True)
    (folder / "data" / "vtsnlp").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n", "utf-8")
    shutil.copy(REPO / "suites" / "vtsnlp.yaml", folder / "suites" / "vtsnlp.yaml")
    with (folder / "data" / "vtsnlp" / "rows.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(samples[0]))
        writer.writeheader()
        for number in range(rows):
            row = samples[number % len(samples)]
            writer.writerow({**row, "instruct": f"{row['instruct']} (câu {number})"})
    suite = folder / "suites" / "vtsnlp.yaml"
    suite.write_text(suite.read_text("utf-8").replace("instruct_general_dataset.parquet", "rows.csv"), "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-large"))
    options = parser.parse_args()
    print("| Rows read | Items collected | Wall (s) | Rows/s | Peak RSS (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for rows in (10_000, options.rows):
        folder = options.workdir / str(rows)
        build_project(folder, rows)
        command = [sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:cacheprovider"]
        seconds, peak, output = measure([*command, "--data-dir", str(folder / "data")], folder)
        found = re.search(r"(\d+) tests? collected", output)
        collected = found.group(1) if found else "?"
        print(f"| {rows:,} | {collected} | {seconds:.1f} | {rows / seconds:,.0f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
