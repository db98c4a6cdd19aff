"""Four checkpoints' run folders for `vnllmtest trend`, made once per test session by real pytest runs of a small
project with replayed answers (tests/test_trend.py and tests/test_trend_html.py share them).

- mc (40 two-option questions, accuracy: McNemar): step-1000 gets q00-q29 right; step-2000 loses q00-q03 and
  gains q30-q31 (a wobble: 4 against 2 discordant items); step-3000 keeps only q20-q31 (a planted drop: 16
  against 0); step-4000 as step-3000.
- qa (13 Vietnamese questions, exact_match and f1: McNemar and permutation): every one right, except the
  hostile id wrong at step-2000 only; step-2000's data lacks `đoạn-11`.
- The step-4000 folder holds two models: step-4000 and base."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from support import make_project, run_folders, short_questions, write_jsonl, write_replay

HOSTILE_ID = '<script>window.__pwned=1</script>"đ'
MISSING_ID = "đoạn-11"
CHOICES = ["A. Sông Hồng", "B. Sông Mã"]
QUESTIONS = [
    {"id": f"q{n:02d}", "question": f"Câu hỏi số {n}: sông nào dài hơn?", "choices": CHOICES, "answer": "A"}
    for n in range(40)
]
PASSAGES = short_questions("đoạn-", 12, "Đà Nẵng")
PASSAGES.append({**PASSAGES[0], "id": HOSTILE_ID})
RIGHT = {
    "step-1000": {f"q{n:02d}" for n in range(30)},
    "step-2000": {f"q{n:02d}" for n in range(4, 32)},
    "step-3000": {f"q{n:02d}" for n in range(20, 32)},
}
RIGHT["step-4000"] = RIGHT["base"] = RIGHT["step-3000"]
SUITES = {
    "mc": {"task": "multiple_choice", "scoring": {"mode": "generate"}},
    "qa": {"task": "extractive_qa", "generation": {"max_new_tokens": 3}},
}


def replies(label: str) -> dict[str, str]:
    choices = {q["id"]: "A" if q["id"] in RIGHT[label] else "B" for q in QUESTIONS}
    wrong = HOSTILE_ID if label == "step-2000" else None
    return {**choices, **{p["id"]: "Huế" if p["id"] == wrong else "Đà Nẵng" for p in PASSAGES}}


@functools.cache
def trend_runs(root: Path) -> dict[str, Path]:
    """Each checkpoint's run folder under `root`, by its label (the step-4000 folder holds base too)."""
    make_project(root, suites=SUITES, records={"mc.jsonl": QUESTIONS})
    folders = {}
    checkpoints = [(label, [label]) for label in ("step-1000", "step-2000", "step-3000")]
    for label, models in [*checkpoints, ("step-4000", ["step-4000", "base"])]:
        passages = [p for p in PASSAGES if not (label == "step-2000" and p["id"] == MISSING_ID)]
        write_jsonl(root / "suites" / "data" / "qa.jsonl", passages)
        options = [option for model in models for option in ("--model", write_replay(root, replies(model), model))]
        command = [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "--report-dir", label, *options]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        [folder] = run_folders(root, label)
        folders[label] = folder.path
    return folders


def tampered(folder: Path, into: Path, change: Callable[[dict], dict]) -> Path:
    """A copy of run `folder` at `into` with every items.jsonl record passed through `change`."""
    shutil.copytree(folder, into)
    items = into / "items.jsonl"
    records = [change(json.loads(line)) for line in items.read_text("utf-8").splitlines()]
    write_jsonl(items, records)
    return into
