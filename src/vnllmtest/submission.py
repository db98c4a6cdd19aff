"""Leaderboard submission files (`pytest --submission`): for each (suite, model) of a suite whose answers are
hidden (VMLU's test split), a UTF-8 CSV with the header `id,answer` and one row per question, in id order,
written beside the run's report. What each file holds is recorded in the manifest and shown at the end."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vnllmtest.outcomes import ItemResult, RunScope
from vnllmtest.suite import SuiteSpec

HEADER = ("id", "answer")
LETTERS = {  # how each scoring mode chooses the letter
    "generate": "the option letter read from the model's reply (the published protocol)",
    "loglikelihood": "the option letter most likely as the next token",
}


@dataclass(frozen=True)
class SubmissionFile:
    """One submission file and what it holds; `ready` is False when it should not be sent as it is."""

    suite: str
    model: str
    file: str  # its name inside the run folder; "" when none of the model's questions ran (no file)
    questions: int  # rows: every question the run evaluated, each id once
    answered: int  # rows with an option letter the model chose
    unanswered: int  # the model gave no readable option (missed items)
    errors: int  # the item could not be evaluated (a model or record error): the run fails
    unanswered_written: str  # what those rows hold: "" (blank) or the suite's submission.unanswered letter
    letters: str  # the scoring mode that chose the letters: generate or loglikelihood (LETTERS says how)
    planned: int | None  # the questions the submission's data holds
    ready: bool
    note: str = ""  # why it is not ready

    def to_json(self) -> dict[str, Any]:
        """summary.json's record (`manifest.submissions`), with the line the reports show."""
        return {**asdict(self), "letters_from": LETTERS.get(self.letters, ""), "description": self.describe()}

    def describe(self, place: str | None = None) -> str:
        """One line for the terminal, summary.md and report.html; `place`: where the file is, if not its name."""
        if not self.file:
            return f"{self.suite} × {self.model}: no file, {self.note}"
        filled = f"'{self.unanswered_written}' written" if self.unanswered_written else "left blank"
        counts = f"{_count(self.questions, 'question')}, {self.answered:,} answered, {self.unanswered:,} unanswered"
        errors = f", {_count(self.errors, 'error')}" if self.errors else ""
        state = "ready to submit" if self.ready else f"NOT ready: {self.note}"
        mode = self.letters
        where = f"{self.suite} × {self.model}: {place or self.file}"
        return f"{where}: {counts}{errors} ({filled}); letters from {mode}; {state}"


def plan_submissions(
    items: Iterable[ItemResult], specs: Mapping[str, SuiteSpec], models: Sequence[str], scope: RunScope
) -> list[SubmissionFile]:
    """The submission file of each suite with hidden answers for each of `models` (the run's, in order), and of
    any other model its items name. A model none of whose items ran gets an entry that says so, and no file."""
    hidden = sorted(name for name, spec in specs.items() if spec.answers_hidden)
    groups: dict[tuple[str, str], list[ItemResult]] = {(suite, model): [] for suite in hidden for model in models}
    for item in items:
        if item.suite in hidden:
            groups.setdefault((item.suite, item.model), []).append(item)
    names: set[str] = set()
    return [_plan(suite, model, members, specs[suite], scope, names) for (suite, model), members in groups.items()]


def _plan(
    suite: str, model: str, members: list[ItemResult], spec: SuiteSpec, scope: RunScope, names: set[str]
) -> SubmissionFile:
    assert spec.submission is not None  # only suites run through SuiteSpec.as_submission hide their answers
    answered = sum(1 for item in members if item.status == "passed")
    errors = sum(1 for item in members if item.status == "error")
    planned = scope.planned.get(suite)
    problems = [f"{_count(errors, 'question')} errored"] if errors else []
    shortfall = scope.shortfall(planned, len(members))
    if shortfall:
        problems.append(shortfall)
    elif not members:
        problems.append("none of its questions ran")
    return SubmissionFile(
        suite=suite,
        model=model,
        file=_file_name(suite, model, names) if members else "",
        questions=len(members),
        answered=answered,
        unanswered=len(members) - answered - errors,
        errors=errors,
        unanswered_written=spec.submission.unanswered,
        letters=spec.scoring.mode,
        planned=planned,
        ready=bool(members) and not problems,
        note="; ".join(problems),
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' * (number != 1)}"


def _file_name(suite: str, model: str, taken: set[str]) -> str:
    """`submission-SUITE-MODEL.csv`, the model label reduced to characters safe in any file system."""
    stem = f"submission-{suite}-{re.sub(r'[^A-Za-z0-9._-]+', '-', model).strip('.-') or 'model'}"
    name, number = f"{stem}.csv", 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}.csv"
    taken.add(name)
    return name


def submission_texts(items: Iterable[ItemResult], files: list[SubmissionFile]) -> dict[str, str]:
    """Each planned file's text by name: every evaluated id once, in id order; a question without a chosen
    option gets the file's `unanswered_written`."""
    by_group: dict[tuple[str, str], list[ItemResult]] = defaultdict(list)
    for item in items:
        by_group[(item.suite, item.model)].append(item)
    texts = {}
    for planned in (found for found in files if found.file):
        handle = io.StringIO()
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for item in sorted(by_group[(planned.suite, planned.model)], key=lambda item: item.id):
            chosen = item.answer if item.status == "passed" and item.answer else planned.unanswered_written
            writer.writerow((item.id, chosen))
        texts[planned.file] = handle.getvalue()
    return texts


def not_written(files: list[SubmissionFile], why: str) -> list[SubmissionFile]:
    """The files as they stand when the report (and so they) could not be written: none is ready."""
    return [dataclasses.replace(found, ready=False, note=why) for found in files]
