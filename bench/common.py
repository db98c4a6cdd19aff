"""What the benchmarks share: running a competitor in its own process and printing the table."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "suites" / "data"
SUBJECTS = 58


@dataclass
class Measured:
    name: str
    items: int
    seconds: float
    peak_mb: float
    score: float | None = None
    note: str = ""


def measure(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, accepted: tuple[int, ...] = (0, 1)
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and output of one command in its own process; an exit status not
    `accepted` stops the benchmark (pytest's 1, a failed gate, is not the point here)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in accepted:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-4000:]}")
    return seconds, usage.ru_maxrss / 1024, output


def table(rows: list[Measured], tokens: int | None) -> str:
    lines = ["| Competitor | Items | Wall (s) | Items/s | Prompt tokens/s | Peak RSS (MB) | Score | Note |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        rate = f"{tokens * row.items / rows[0].items / row.seconds:.0f}" if tokens else "—"
        score = "—" if row.score is None else f"{row.score:.1f}"
        lines.append(
            f"| {row.name} | {row.items} | {row.seconds:.1f} | {row.items / row.seconds:.2f} | {rate} | "
            f"{row.peak_mb:.0f} | {score} | {row.note} |"
        )
    return "\n".join(lines)


def vmlu_records(count: int) -> Iterator[dict]:
    """`count` VMLU-format questions (ids SS-NNNNN over the 58 subjects): our sample records, repeated."""
    samples = [json.loads(line) for line in (SAMPLES / "vmlu_sample.jsonl").read_text("utf-8").splitlines() if line]
    for number in range(count):
        yield {**samples[number % len(samples)], "id": f"{number % SUBJECTS + 1:02d}-{number:05d}"}
