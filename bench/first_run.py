"""The README's main job as a newcomer's first run: wall time of N runs with the converted model already
cached and an empty prediction cache each time, per phase where the run records them.

    python bench/first_run.py --runs 3

Each run is `pytest suites/ --data sample --judge gemma3-270m` in its own process, with a fresh temporary
--cache-dir and --report-dir, after one untimed item that converts the bundled model if it is not yet converted; the table gives every run, then the median: wall seconds, CPU seconds (user
plus system, which a machine shared with other jobs inflates less than the wall time), and the phases
from the run's summary.json (manifest.phase_seconds, seconds per phase of each process).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from common import measure

REPO = Path(__file__).resolve().parents[1]
MAIN_JOB = ["suites/", "--data", "sample", "--judge", "gemma3-270m"]


def one_run(number: int) -> dict[str, float]:
    """Wall and CPU seconds, and seconds per phase (summed over processes), of one run of the main job."""
    with tempfile.TemporaryDirectory(prefix="vnllmtest-first-run-") as folder:
        report_dir = Path(folder) / "reports"
        command = [sys.executable, "-m", "pytest", *MAIN_JOB, "-p", "no:cacheprovider"]
        command += ["--cache-dir", str(Path(folder) / "cache"), "--report-dir", str(report_dir)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, _, output = measure(command, REPO, accepted=(0,))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = json.loads(next(report_dir.glob("*/summary.json")).read_text(encoding="utf-8"))
    phases: dict[str, float] = {}
    for process in summary["manifest"].get("phase_seconds", {}).values():
        for phase, value in process.items():
            phases[phase] = phases.get(phase, 0.0) + value
    tail = [line for line in output.splitlines() if line.startswith(("=", "vnllmtest gates"))][-2:]
    print(f"run {number}: {seconds:.0f} s; " + " | ".join(tail), file=sys.stderr)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall": seconds, "cpu": cpu, **phases}


def warm_up() -> None:
    """One untimed item of the bundled model, so that its one-time conversion is never inside a timed run."""
    with tempfile.TemporaryDirectory(prefix="vnllmtest-first-run-") as folder:
        command = [sys.executable, "-m", "pytest", "suites/vmlu.yaml", "--data", "sample", "--limit", "1"]
        command += ["--model", "gemma3-270m", "-p", "no:cacheprovider", "--no-cache", "--report-dir", folder]
        seconds, _, _ = measure(command, REPO, accepted=(0, 1))
    print(f"warm-up (converts the bundled model once if needed): {seconds:.0f} s", file=sys.stderr)


def table(runs: list[dict[str, float]]) -> str:
    columns = list(dict.fromkeys(phase for run in runs for phase in run))  # wall, cpu, then the phases in run order
    lines = ["| Run | " + " | ".join(f"{c} (s)" for c in columns) + " |", "| --- |" + " ---: |" * len(columns)]
    rows = [(str(n), run) for n, run in enumerate(runs, start=1)]
    median = {c: statistics.median(run[c] for run in runs if c in run) for c in columns if any(c in r for r in runs)}
    for name, run in [*rows, ("median", median)]:
        cells = [f"{run[c]:.0f}" if c in run else "—" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="how many runs (default 3); the table adds their median")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    warm_up()
    print(table([one_run(number) for number in range(1, args.runs + 1)]))


if __name__ == "__main__":
    main()
