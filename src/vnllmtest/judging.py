"""Runs a judge model over finished candidate results: renders the rubric prompts (each section cut to
its token budget, recorded), generates in batches through the cached runner, parses the scores, and
asks once more, more strictly, where a reply could not be parsed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vnllmtest.backends.base import Backend, Request
from vnllmtest.budget import fit
from vnllmtest.evaluation import ItemResult
from vnllmtest.judge import JudgeParseError, Judgment, judge_messages, parse_judgment
from vnllmtest.loaders.base import Item
from vnllmtest.prompts import PromptError, render
from vnllmtest.runner import Runner
from vnllmtest.suite import JUDGE_OVERALL, JUDGE_PREFIX, JudgeSpec, PromptBudget, Suite


@dataclass(frozen=True)
class JudgeJob:
    """One candidate answer to judge."""

    suite: Suite
    item: Item
    model: str  # the candidate's label
    output: str


@dataclass
class Verdict:
    """What one judge said about one answer: scores (None after a judge_error) and the evidence."""

    judge: str
    scores: dict[str, float] | None = None
    overall: float | None = None
    rationale: str = ""
    raw_outputs: list[str] = field(default_factory=list)
    error: str | None = None
    judge_failed: bool = False  # the judge model or the judge prompt failed: an item error, not a miss
    truncated_sections: list[dict[str, Any]] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def judge_all(
    judge: Backend, jobs: Sequence[JudgeJob], runner: Runner, max_new_tokens_cap: int | None = None
) -> list[Verdict]:
    """A verdict per job, in order; `max_new_tokens_cap` caps the judge's replies like the candidates'."""
    verdicts = [Verdict(judge.label) for _ in jobs]
    sections = []
    for job, verdict in zip(jobs, verdicts):
        try:
            sections.append(_sections(judge, job, verdict))
        except PromptError as exc:
            verdict.error, verdict.judge_failed = f"judge prompt: {exc}", True
            sections.append(None)
    pending = [i for i, found in enumerate(sections) if found is not None]
    for strict in (False, True):
        if not pending:
            break
        requests = [_request(judge, jobs[i], sections[i], strict, max_new_tokens_cap) for i in pending]
        label = f"judge {judge.label}" + (" (retry)" if strict else "")
        predictions = runner.run(judge, requests, "generate", description=label)
        still = []
        for index, prediction in zip(pending, predictions):
            verdict = verdicts[index]
            if prediction.error is not None:
                verdict.error, verdict.judge_failed = f"judge model error: {prediction.error}", True
                continue
            reply = _primer(judge, jobs[index]) + prediction.text
            verdict.raw_outputs.append(reply)
            try:
                _accept(verdict, parse_judgment(reply, jobs[index].suite.spec.judge.resolved_rubric))
            except JudgeParseError as exc:
                verdict.error = f"judge_error: {exc}"
                still.append(index)
        pending = still
    return verdicts


def _accept(verdict: Verdict, judgment: Judgment) -> None:
    verdict.scores, verdict.overall, verdict.rationale, verdict.error = judgment.scores, judgment.overall, judgment.rationale, None


def _sections(judge: Backend, job: JudgeJob, verdict: Verdict) -> list[tuple[str, str]]:
    """The sections the suite shows the judge, each cut to `max_tokens_per_section` judge tokens."""
    spec = job.suite.spec.judge
    fields = {
        **job.item.fields,
        "output": job.output,
        "reference": job.item.references[0] if job.item.references else "",
        "references": list(job.item.references),
    }
    budget = PromptBudget(max_tokens=spec.max_tokens_per_section, field="text", policy="head")
    rendered = []
    for section in spec.sees:
        text = render(section.text, fields)
        cut, truncation = fit({"text": text}, budget, lambda f: judge.prompt_length(f["text"]))
        if truncation is not None:
            verdict.truncated_sections.append({"section": section.title, **asdict(truncation)})
        rendered.append((section.title, cut["text"]))
    return rendered


def _request(
    judge: Backend, job: JudgeJob, sections: list[tuple[str, str]], strict: bool, cap: int | None
) -> Request:
    spec = job.suite.spec.judge
    prompt = judge.format_prompt(judge_messages(spec.resolved_rubric, sections, strict=strict))
    primer = _primer(judge, job)
    if primer:
        prompt = f"{prompt}\n\n{primer}"
    return Request(job.suite.name, job.item.id, prompt, (), min(spec.max_new_tokens, cap or spec.max_new_tokens))


def _primer(judge: Backend, job: JudgeJob) -> str:
    """A model that continues plain text (a base model) gets the start of the JSON to continue;
    chat models answer on their own turn."""
    if not judge.plain_prompts:
        return ""
    return f'{{"{job.suite.spec.judge.resolved_rubric.criteria[0].name}": '



def with_verdicts(result: ItemResult, verdicts: Sequence[Verdict], spec: JudgeSpec) -> ItemResult:
    """The item's result with its judges' verdicts: the first judge's scores become `judge_*` metrics;
    a judge_error or an overall score under `pass_min` turns a pass into a miss."""
    first = verdicts[0]
    metrics = dict(result.metrics)
    status, failure_class, message = result.status, result.failure_class, result.message
    if first.scores is not None:
        metrics[JUDGE_OVERALL] = first.overall
        metrics.update({f"{JUDGE_PREFIX}{name}": value for name, value in first.scores.items()})
        if spec.pass_min is not None and first.overall < spec.pass_min and status == "passed":
            status, failure_class = "missed", "judge_score_low"
    elif first.judge_failed:
        status, failure_class = "error", "judge_failed"
    elif status == "passed":
        status, failure_class = "missed", "judge_error"
    if first.error is not None:
        message = f"{first.error}; judge output: {first.raw_outputs[-1] if first.raw_outputs else '(none)'}"
    return replace(
        result, status=status, failure_class=failure_class, message=message, metrics=metrics,
        judges=[verdict.to_record() for verdict in verdicts],
    )
