"""A run the prediction cache answers fully, side by side with the cold run that filled it: the VMLU
log-likelihood row of `throughput.py` (744 validation records, the bundled Gemma 3 270M, batch size 16).
Needs ../shared/data.

    python bench/warm_cache.py [--data-dir ../shared/data] [--warm-runs 3] [--workdir /tmp/vnllmtest-warm]

One cold run into an empty cache, then `--warm-runs` warm runs of the same command, each in its own process,
with Python's default bytecode caching (PYTHONDONTWRITEBYTECODE removed from their environment: without the
cached bytecode pytest compiles every plugin module again at each start, cold or warm).
Prints a Markdown table (wall time, peak RSS, accuracy, model loads, the heavy modules each process imported)
and the speed-up of the median warm run; checks that the warm runs recorded the same items as the cold one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

from common import measure
from throughput import MODEL, REPO, write_suite


def run(workdir: Path, data_dir: Path, batch_size: int, limit: int | None) -> tuple[float, float, list[dict], dict]:
    """One pytest run of the suite; its wall time, peak RSS, items and summary."""
    reports = workdir / "reports"
    command = [sys.executable, "-m", "pytest", "suites/vmlu_ll.yaml", "--model", MODEL, "-q", "-p", "no:cacheprovider"]
    command += ["--data-dir", str(data_dir), "--report-dir", str(reports), "--show-misses", "0"]
    command += ["--cache-dir", str(workdir / "cache"), "--batch-size", str(batch_size)]
    command += ["--limit", str(limit)] if limit else []
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    seconds, peak, _ = measure(command, workdir, env)
    folder = sorted(reports.iterdir())[-1]
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text("utf-8").splitlines()]
    return seconds, peak, items, json.loads((folder / "summary.json").read_text("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--limit", type=int, help="only the first N records (a quick check of the script)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-warm"))
    options = parser.parse_args()
    workdir: Path = options.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "pytest.ini").write_text("[pytest]\n", "utf-8")
    shutil.copyfile(REPO / "tests" / "modules_seen.py", workdir / "conftest.py")  # records the modules imported
    write_suite(workdir, "vmlu.yaml", "vmlu_ll", {"mode": "loglikelihood"}, None)
    data_dir = options.data_dir.resolve()
    runs = [run(workdir, data_dir, options.batch_size, options.limit) for _ in range(1 + options.warm_runs)]
    seen = [json.loads(line) for line in (workdir / "modules-seen.jsonl").read_text("utf-8").splitlines()]
    cold_items = runs[0][2]
    print(f"\n### VMLU, {len(cold_items)} records, log-likelihood, batch size {options.batch_size}: cold and warm\n")
    print("| Run | Items | Wall (s) | Peak RSS (MB) | Accuracy | Cached items | Model loads | Heavy modules imported |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for number, ((seconds, peak, items, summary), held) in enumerate(zip(runs, seen)):
        loads = summary["manifest"]["models"].get(MODEL, {}).get("loads", [])
        values = [item["metrics"]["accuracy_loglik"] for item in items if "accuracy_loglik" in item["metrics"]]
        name = "cold (empty cache)" if number == 0 else f"warm {number}"
        print(
            f"| {name} | {len(items)} | {seconds:.1f} | {peak:.0f} | {100 * sum(values) / len(values):.1f} | "
            f"{sum(item['cached'] for item in items)} | {len(loads)} | {', '.join(held) or 'none'} |"
        )
    warm = statistics.median(seconds for seconds, *_ in runs[1:])
    same = all([{**i, "cached": True} for i in cold_items] == items for _, _, items, _ in runs[1:])
    print(
        f"\nMedian warm run {warm:.1f} s against {runs[0][0]:.1f} s cold: {runs[0][0] / warm:.1f}x faster; "
        f"warm items.jsonl {'identical to' if same else 'DIFFERENT from'} the cold run's (but for `cached`)"
    )


if __name__ == "__main__":
    main()
