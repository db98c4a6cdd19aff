"""Runs a judge model over finished candidate results: renders the rubric prompts (each section cut to
its token budget, recorded: vnllmtest.judge_rendering), generates in batches through the cached runner,
reads the scores, and asks once more, more strictly, where a reply could not be read. Every judged item
then carries `verdict_coverage` (1 when the first judge's verdict was readable), so unreadable replies are
counted, never dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vnllmtest.backends.base import Backend, Request
from vnllmtest.backends.registry import JudgeLimits
from vnllmtest.evaluation import ScoreJob
from vnllmtest.judge import primer
from vnllmtest.judge_rendering import Ask, JudgePrompt, Section, judge_prompts
from vnllmtest.judge_parse import parse_judgment
from vnllmtest.metric_table import JUDGE_OVERALL, JUDGE_PREFIX, JUDGE_SCORE, VERDICT_COVERAGE
from vnllmtest.outcomes import ItemResult
from vnllmtest.prompts import PromptError, new_quota, render
from vnllmtest.rubrics import JudgeParseError, Judgment, Rubric
from vnllmtest.runner import Prediction, Runner
from vnllmtest.suite import JudgeSpec

PRIMED_STOP = "}"  # a primed base model has finished its JSON at the first closing brace
# A primed base model writes only the rest of the JSON, never reasoning; small ones often never close
# the brace and would run to the whole reply budget, so theirs is capped here.
PRIMED_MAX_NEW_TOKENS = 128


@dataclass
class Verdict:
    """What one judge said about one answer: scores by the rubric's JSON keys (None when unreadable),
    the holistic score and the criteria's weighted mean (each None where the rubric has none), and
    the evidence. `reply_cut`: the last reply ran into the judge's max_new_tokens."""

    judge: str
    scores: dict[str, float] | None = None
    holistic: float | None = None
    overall: float | None = None
    rationale: str = ""
    raw_outputs: list[str] = field(default_factory=list)
    error: str | None = None
    judge_failed: bool = False  # the judge model or the judge prompt failed: an item error, not a miss
    reply_cut: bool = False
    truncated_sections: list[dict[str, Any]] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def judge_all(
    judge: Backend,
    jobs: Sequence[ScoreJob],
    runner: Runner,
    max_new_tokens_cap: int | None = None,
    limits: JudgeLimits | None = None,
) -> list[Verdict]:
    """A verdict per job, in order; `max_new_tokens_cap` caps the judge's replies like the candidates';
    `limits` (the judge's alias) caps its section and reply budgets below the suite's."""
    limits = limits or JudgeLimits()
    cap = min(filter(None, (max_new_tokens_cap, limits.max_new_tokens)), default=None)
    verdicts = [Verdict(judge.label) for _ in jobs]
    asks: dict[int, Ask] = {}
    for index, (job, verdict) in enumerate(zip(jobs, verdicts)):
        try:
            asks[index] = _ask(job, limits.max_tokens_per_section)
        except PromptError as exc:
            verdict.error, verdict.judge_failed = f"judge prompt: {exc}", True
    pending = list(asks)
    for strict in (False, True):
        if not pending:
            break
        prompts = judge_prompts(judge, [asks[i] for i in pending], strict, runner.cache, runner.refresh)
        requests = [_request(jobs[i], prompt, cap) for i, prompt in zip(pending, prompts)]
        label = f"judge {judge.label}" + (" (retry)" if strict else "")
        predictions = runner.run(judge, requests, "generate", description=label)
        still = []
        for index, prompt, prediction in zip(pending, prompts, predictions):
            verdict = verdicts[index]
            verdict.truncated_sections = list(prompt.truncated_sections)
            if prediction.error is not None:
                verdict.error, verdict.judge_failed = f"judge model error: {prediction.error}", True
                continue
            rubric = jobs[index].suite.spec.judge.resolved_rubric
            verdict.reply_cut = prediction.finish_reason == "length"
            reply = _reply(prompt.primed, rubric, prediction)
            verdict.raw_outputs.append(reply)
            try:
                _accept(verdict, parse_judgment(reply, rubric, cut=verdict.reply_cut))
            except JudgeParseError as exc:
                cut = f"the reply was cut by its budget after {prediction.new_tokens} new tokens; "
                verdict.error = f"judge_truncated: {cut}{exc}" if verdict.reply_cut else f"judge_error: {exc}"
                still.append(index)
        pending = still
    return verdicts


def _accept(verdict: Verdict, judgment: Judgment) -> None:
    verdict.scores, verdict.holistic, verdict.overall = judgment.scores, judgment.holistic, judgment.overall
    verdict.rationale, verdict.error = judgment.rationale, None


def _reply(primed: bool, rubric: Rubric, prediction: Prediction) -> str:
    """The judge's whole reply: a primed base model's JSON start, its continuation, and the closing
    brace its stop string removed (not when the budget cut it)."""
    if not primed:
        return prediction.text
    closing = "" if prediction.finish_reason == "length" else PRIMED_STOP
    return primer(rubric) + prediction.text + closing


def _ask(job: ScoreJob, cap: int | None) -> Ask:
    """The sections the suite shows the judge, each to be cut to its `max_tokens` (else the judge's
    `max_tokens_per_section`; at most `cap`, the judge model's limit) in the judge's tokens."""
    spec = job.suite.spec.judge
    fields = {
        **job.item.fields,
        "output": job.output,
        "reference": job.item.references[0] if job.item.references else "",
        "references": list(job.item.references),
    }
    sections = []
    for index, section in enumerate(spec.sees):
        tokens = min(filter(None, (section.max_tokens or spec.max_tokens_per_section, cap)))
        text = render(section.text, fields, new_quota(job.suite.spec.prompt.limits), f"judge.sees.{index}.text")
        sections.append(Section(section.title, text, tokens))
    return Ask(spec.resolved_rubric, tuple(sections))


def _request(job: ScoreJob, prompt: JudgePrompt, cap: int | None) -> Request:
    """A primed prompt (a base model continues the start of the JSON) stops at the closing brace and has
    at most PRIMED_MAX_NEW_TOKENS; chat models answer on their own turn, reasoning first if they like,
    within judge.max_new_tokens. `cap` (--max-new-tokens, the judge model's limit) caps both."""
    spec = job.suite.spec.judge
    budget = min(spec.max_new_tokens, cap or spec.max_new_tokens)
    if not prompt.primed:
        return Request(job.suite.name, job.item.id, prompt.text, (), budget)
    return Request(job.suite.name, job.item.id, prompt.text, (), min(budget, PRIMED_MAX_NEW_TOKENS), (PRIMED_STOP,))


def judge_metrics(verdict: Verdict, rubric: Rubric) -> dict[str, float]:
    """A readable verdict as item metrics: judge_score (holistic), judge_overall (criteria mean), judge_<criterion>."""
    assert verdict.scores is not None
    metrics = {}
    if rubric.holistic is not None:
        metrics[JUDGE_SCORE] = verdict.scores[rubric.holistic.name]
    if verdict.overall is not None:
        metrics[JUDGE_OVERALL] = verdict.overall
    metrics.update({f"{JUDGE_PREFIX}{c.name}": verdict.scores[c.name] for c in rubric.criteria})
    return metrics


def with_verdicts(result: ItemResult, verdicts: Sequence[Verdict], spec: JudgeSpec) -> ItemResult:
    """The item's result with its judges' verdicts: `verdict_coverage` (1 or 0) always, and the first
    judge's scores as `judge_*` metrics. An unreadable verdict turns a pass into a miss (`judge_error`,
    or `judge_truncated` when the last reply was cut by its budget); so does a headline score (the
    holistic score, else the overall) under `pass_min`."""
    first = verdicts[0]
    rubric = spec.resolved_rubric
    metrics = {**result.metrics, VERDICT_COVERAGE: 0.0 if first.scores is None else 1.0}
    status, failure_class, message = result.status, result.failure_class, result.message
    if first.scores is not None:
        metrics.update(judge_metrics(first, rubric))
        if spec.pass_min is not None and rubric.headline(first.scores) < spec.pass_min and status == "passed":
            status, failure_class = "missed", "judge_score_low"
    elif first.judge_failed:
        status, failure_class = "error", "judge_failed"
    elif status == "passed":
        status, failure_class = "missed", "judge_truncated" if first.reply_cut else "judge_error"
    if first.error is not None:
        message = f"{first.error}; judge output: {first.raw_outputs[-1] if first.raw_outputs else '(none)'}"
    return replace(
        result, status=status, failure_class=failure_class, message=message, metrics=metrics,
        judges=[verdict.to_record() for verdict in verdicts],
    )
