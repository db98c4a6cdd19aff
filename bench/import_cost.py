"""What the vnllmtest plugin costs a pytest run that has nothing to do with it, and what it costs to
import: the median of several fresh processes each, on a project with one plain test.

    python bench/import_cost.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "numpy", "pydantic", "jinja2", "httpx")


def timed(command: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "test_plain.py").write_text("def test_sum():\n    assert 1 + 1 == 2\n", "utf-8")
        pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        rows = [
            ("python -c pass", timed([sys.executable, "-c", "pass"], project, runs)),
            ("import pytest", timed([sys.executable, "-c", "import pytest"], project, runs)),
            ("import vnllmtest.plugin", timed([sys.executable, "-c", "import vnllmtest.plugin"], project, runs)),
            ("pytest, vnllmtest disabled (-p no:vnllmtest)", timed([*pytest_run, "-p", "no:vnllmtest"], project, runs)),
            ("pytest, vnllmtest installed", timed(pytest_run, project, runs)),
        ]
        check = f"import sys, vnllmtest.plugin; print(sorted(h for h in {HEAVY!r} if h in sys.modules))"
        loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip()
    print(f"| What runs (median of {runs} fresh processes) | Seconds |")
    print("| --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    print(f"\nHeavy packages loaded by `import vnllmtest.plugin`: {loaded}")


if __name__ == "__main__":
    main()
