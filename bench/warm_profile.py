"""Where a warm-cache run spends its time: the VMLU log-likelihood run of `throughput.py`, again,
under cProfile, split into the phases of a pytest session. Run `throughput.py --only mc` (or
`warm_cache.py`, then pass `--workdir /tmp/vnllmtest-warm`) first: it leaves the suites and the warm
cache in its work folder.

    python bench/warm_profile.py [--workdir /tmp/vnllmtest-throughput] [--top 12]

Prints two Markdown tables: seconds per phase, and the functions with the most time of their own."""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import time
from pathlib import Path

from throughput import MODEL

# (phase, the function whose cumulative time is that phase), in the order a session runs them.
PHASES = [
    ("import the plugin", "vnllmtest/plugin/__init__.py", "<module>"),
    ("construct the model: fingerprint and prompt identity (file digests)", "vnllmtest/backends/hf.py", "__init__"),
    ("import transformers, read the tokenizer and config (a miss only)", "vnllmtest/backends/hf.py", "_read"),
    ("collect: read records, sample, build items", "_pytest/main.py", "pytest_collection"),
    ("run the items (prompts, cache look-ups, scoring)", "_pytest/main.py", "pytest_runtestloop"),
    ("summary, bootstrap intervals, reports", "vnllmtest/plugin/results.py", "pytest_sessionfinish"),
]


def cumulative(stats: pstats.Stats, filename: str, function: str) -> float:
    return max(
        (row[3] for (path, _, name), row in stats.stats.items() if path.endswith(filename) and name == function),
        default=0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-throughput"))
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--top", type=int, default=12)
    options = parser.parse_args()
    cache = options.workdir / "cache"
    if not (cache / "predictions.sqlite").exists():
        raise SystemExit(f"{cache}: no warm cache; run bench/throughput.py --only mc first")
    profile = options.workdir / "warm.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "pytest", "suites/vmlu_ll.yaml"]
    command += ["--model", MODEL, "-q", "-p", "no:cacheprovider", "--data-dir", str(options.data_dir.resolve())]
    command += ["--cache-dir", str(cache), "--report-dir", str(options.workdir / "profiled"), "--show-misses", "0"]
    started = time.perf_counter()
    subprocess.run(command, cwd=options.workdir, check=False, capture_output=True)
    wall = time.perf_counter() - started
    stats = pstats.Stats(str(profile))
    print(f"\n### Warm-cache run of {MODEL} on VMLU under cProfile: {wall:.1f} s wall\n")
    print("| Phase | Seconds |\n| --- | ---: |")
    for phase, filename, function in PHASES:
        print(f"| {phase} | {cumulative(stats, filename, function):.1f} |")
    print(f"| whole profiled process | {stats.total_tt:.1f} |")
    print(f"\n### The {options.top} functions with the most time of their own\n")
    print("| Function | Calls | Own seconds | Cumulative seconds |\n| --- | ---: | ---: | ---: |")
    ranked = sorted(stats.stats.items(), key=lambda entry: entry[1][2], reverse=True)[: options.top]
    for (path, line, name), (_, calls, own, total, _) in ranked:
        where = "/".join(Path(path).parts[-2:]) if path != "~" else "built-in"
        print(f"| `{name}` ({where}:{line}) | {calls} | {own:.2f} | {total:.2f} |")


if __name__ == "__main__":
    main()
