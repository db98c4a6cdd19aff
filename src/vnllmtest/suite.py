"""Suite files: the schema of a vnllmtest suite and YAML loading with exact error locations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jinja2 import TemplateError, TemplateSyntaxError
from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator

from vnllmtest.clipping import described, shown
from vnllmtest.dataset_spec import HIDDEN_ANSWERS, DatasetSpec, SubmissionSpec
from vnllmtest.extensions import ADAPTERS, METRICS, ExtensionError
from vnllmtest.metric_table import (
    CHOICE_METRICS,
    JUDGE_OVERALL,
    JUDGE_PREFIX,
    JUDGE_SCORE,
    VERDICT_COVERAGE,
    metric_info,
)
from vnllmtest.prompt_spec import MAX_TOKENS, PromptSpec, Strict
from vnllmtest.prompts import compile_template
from vnllmtest.rubrics import Rubric, packaged_rubrics, rubric_from_mapping
from vnllmtest.suite_file import SuiteError, describe_validation, line_of, read_suite_yaml


def _declarable_metric(name: str) -> str:
    """A metric a suite may list (judge metrics come with `judge:` instead) whose required modules are installed;
    the error names the ones it may list, or how to install what is missing."""
    try:
        metric = metric_info(name)
    except ExtensionError as exc:
        raise ValueError(str(exc)) from None
    except KeyError:
        raise ValueError(f"unknown metric '{name}'; a suite may list {', '.join(declarable_metrics())}") from None
    if not metric.declarable:
        raise ValueError(
            f"'{name}' comes with the suite's judge: block (an item passes on the judge's score with "
            f"judge.pass_min); a suite may list {', '.join(declarable_metrics())}"
        )
    missing = metric.missing_modules()
    if missing:
        how = f"; install it with: {metric.install}" if metric.install else ""
        raise ValueError(f"metric '{name}' needs {', '.join(missing)}, which is not installed here{how}")
    return name


def declarable_metrics(multiple_choice: bool | None = None) -> list[str]:
    """The metrics a suite may list (only those of multiple-choice suites, or of the other tasks, when
    `multiple_choice` is given); an installed metric that cannot be loaded is left out."""
    found = []
    for name in METRICS.names():
        try:
            metric = metric_info(name)
        except ExtensionError:
            continue
        if metric.declarable and multiple_choice in (None, bool(metric.choice_modes)):
            found.append(name)
    return found


MetricName = Annotated[str, AfterValidator(_declarable_metric)]


class TaskType(str, Enum):
    multiple_choice = "multiple_choice"
    extractive_qa = "extractive_qa"
    summarization = "summarization"
    instruction = "instruction"


class ScoringSpec(Strict):
    """Multiple choice: `generate` (the published protocol) answers freely and extracts the letter
    (`accuracy`); `loglikelihood` takes the most likely option letter (`accuracy_loglik`); `both` runs
    the two and adds `mode_agreement` (same chosen option in both modes)."""

    mode: Literal["loglikelihood", "generate", "both"] = "generate"
    # Which next tokens stand for an option in log-likelihood scoring: the label after a space (" A",
    # as lm-evaluation-harness scores it), the bare label ("A"), or either (their probabilities added).
    label_tokens: Literal["either", "spaced", "bare"] = "either"
    abstentions: list[str] = Field(default_factory=list)


class GenerationSpec(Strict):
    max_new_tokens: int = Field(default=64, ge=1, le=MAX_TOKENS)
    stop: list[str] = Field(default_factory=list, max_length=64)
    thinking: bool = False  # let thinking models think (their template's enable_thinking); --thinking overrides


class ItemPass(Strict):
    """An item passes when its value of `metric` is at least `min` (item values lie in [0, 1])."""

    metric: MetricName
    min: float = Field(ge=0, le=1)

    @field_validator("metric")
    @classmethod
    def _scored_from_the_answer(cls, name: str) -> str:
        if metric_info(name).grader is not None:
            raise ValueError(f"'{name}' is scored by a model after every item has run; an item passes on a metric "
                             "scored from its own answer")
        return name


class Gate(Strict):
    """A suite-level threshold on an aggregate (0-100 points; judge metrics on the rubric's scale).

    Absolute (`min`/`max`, on the point value or a CI bound), or relative to a `--baseline` run
    (`max_drop`: the paired difference on shared items, or its CI bound, may fall at most this far
    below zero; with `significance`, only a drop whose p-value is below it fails)."""

    metric: str
    min: float | None = Field(default=None, ge=0, le=100)
    max: float | None = Field(default=None, ge=0, le=100)
    max_drop: float | None = Field(default=None, ge=0, le=100)
    significance: float | None = Field(default=None, gt=0, lt=1)
    bound: Literal["value", "ci_low", "ci_high"] = "value"

    @model_validator(mode="after")
    def _has_threshold(self) -> Gate:
        absolute = self.min is not None or self.max is not None
        if absolute == (self.max_drop is not None):
            raise ValueError("give 'min' and/or 'max' (an absolute gate) or 'max_drop' (a gate against --baseline)")
        if self.significance is not None and self.max_drop is None:
            raise ValueError("'significance' needs 'max_drop'")
        return self

    @property
    def relative(self) -> bool:
        return self.max_drop is not None


class JudgeSection(Strict):
    """One part of what the judge sees: a title and a template over the item's fields, `output`
    (the candidate's answer), `reference` (the first gold answer) and `references`; `max_tokens`
    (judge tokens) overrides the judge's `max_tokens_per_section` for this section."""

    title: str
    text: str
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)


class JudgeSpec(Strict):
    """LLM-as-judge scoring: a rubric (packaged name or inline), what the judge sees, a token budget
    per section, the judge's reply budget, the score an item needs to pass (`pass_min`: compared with
    judge_score when the rubric has a holistic score, else with judge_overall), and `min_coverage`,
    the least verdict_coverage (points) under which every gate on a judge metric fails."""

    rubric: str | dict[str, Any]
    sees: list[JudgeSection] = Field(min_length=1)
    max_tokens_per_section: int = Field(default=1024, ge=1, le=MAX_TOKENS)
    # Room to reason first; primed base models get at most 128.
    max_new_tokens: int = Field(default=512, ge=1, le=MAX_TOKENS)
    pass_min: float | None = None
    min_coverage: float = Field(default=95, ge=0, le=100)

    @model_validator(mode="after")
    def _known_rubric(self) -> JudgeSpec:
        rubric = self.resolved_rubric
        if self.pass_min is not None and not rubric.low <= self.pass_min <= rubric.high:
            raise ValueError(f"pass_min {self.pass_min:g} is outside the rubric's scale {rubric.low}-{rubric.high}")
        return self

    @cached_property
    def resolved_rubric(self) -> Rubric:
        """The rubric, parsed once (packaged by name, or inline)."""
        if isinstance(self.rubric, dict):
            return rubric_from_mapping("inline", self.rubric)
        library = packaged_rubrics()
        if self.rubric not in library:
            raise ValueError(f"unknown rubric {described(self.rubric)}; packaged rubrics: {', '.join(sorted(library))}")
        return library[self.rubric]

    @property
    def metrics(self) -> list[str]:
        """judge_score (holistic), judge_overall (criteria mean), judge_<criterion>, verdict_coverage."""
        rubric = self.resolved_rubric
        headline = [JUDGE_SCORE] if rubric.holistic else []
        criteria = [JUDGE_OVERALL, *(f"{JUDGE_PREFIX}{c.name}" for c in rubric.criteria)] if rubric.criteria else []
        return [*headline, *criteria, VERDICT_COVERAGE]


class SuiteSpec(Strict):
    vnllmtest: Literal[1]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    task: TaskType
    dataset: DatasetSpec
    prompt: PromptSpec
    scoring: ScoringSpec = ScoringSpec()
    generation: GenerationSpec = GenerationSpec()
    metrics: list[MetricName] = Field(min_length=1)
    item_pass: ItemPass
    judge: JudgeSpec | None = None
    cluster_by: str | None = Field(default=None, min_length=1)
    gates: list[Gate] = Field(default_factory=list)
    submission: SubmissionSpec | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> SuiteSpec:
        multiple_choice = self.task is TaskType.multiple_choice
        if self.submission is not None:
            _check_submission(self)
        if self.answers_hidden:
            if not (info.context or {}).get(SUBMISSION_VIEW):
                raise ValueError(
                    "dataset.options.answers 'hidden' is set by `pytest --submission` alone (records without "
                    "answers, nothing scored); declare a submission: block instead"
                )
            return self
        for metric in self.metrics:
            if bool(metric_info(metric).choice_modes) != multiple_choice:
                raise ValueError(
                    f"metric '{metric}' does not fit task '{self.task.value}': multiple_choice suites use "
                    f"{declarable_metrics(True)}, the other tasks use {declarable_metrics(False)}"
                )
            modes = metric_info(metric).choice_modes or (self.scoring.mode,)
            if self.scoring.mode not in modes:
                raise ValueError(
                    f"metric '{metric}' needs scoring.mode {' or '.join(repr(m) for m in modes)}, not "
                    f"'{self.scoring.mode}' (`accuracy` is generate+extract, `accuracy_loglik` the log-likelihood choice)"
                )
        if self.scoring.mode != "generate" and not multiple_choice:
            raise ValueError(f"scoring.mode '{self.scoring.mode}' needs task 'multiple_choice'")
        used = [self.item_pass.metric] + [gate.metric for gate in self.gates]
        for metric in used:
            if metric not in self.reported_metrics:
                raise ValueError(
                    f"'{metric}' is used by item_pass or gates but not reported; this suite reports "
                    f"{', '.join(self.reported_metrics)}"
                )
        if self.judge is not None:
            _check_judge_gates(self.gates, self.judge.resolved_rubric)
        return self

    @property
    def answers_hidden(self) -> bool:
        """Whether the records carry no answers (a submission run): nothing is scored."""
        return self.dataset.options.get("answers") == HIDDEN_ANSWERS

    def as_submission(self) -> SuiteSpec:
        """The suite as `pytest --submission` runs it: every question of the submission's data, answers
        hidden, letters from the submission's scoring mode, no gates."""
        if self.submission is None:
            raise ValueError(f"suite '{self.name}' declares no submission: block")
        chosen, dataset = self.submission, self.dataset
        if chosen.split and not (dataset.source or "").startswith("hf://"):
            raise ValueError(
                "submission.split names a split of a hub dataset (dataset.source: hf://...), which this suite does "
                "not have; give submission.local (under --data-dir) or submission.sample instead"
            )
        source = dataset.source if chosen.split else None  # never the declared split's file or split
        data = {"source": source, "split": chosen.split, "local": chosen.local, "sample": chosen.sample}
        options = {**dataset.options, "answers": HIDDEN_ANSWERS}
        hidden = dataset.model_copy(update={**data, "sampling": None, "options": options})
        scoring = self.scoring.model_copy(update={"mode": chosen.letters})
        changed = self.model_copy(update={"dataset": hidden, "scoring": scoring, "gates": []})
        return SuiteSpec.model_validate(changed.model_dump(mode="json"), context=SUBMISSION_CONTEXT)

    @property
    def reported_metrics(self) -> list[str]:
        """The declared metrics, plus every multiple-choice metric whenever scoring.mode is `both`, plus
        the judge's metrics when the suite has a judge; none when the answers are hidden."""
        if self.answers_hidden:
            return []
        both = self.scoring.mode == "both"
        extra = [m for m in CHOICE_METRICS if both and m not in self.metrics]
        return [*self.metrics, *extra, *(self.judge.metrics if self.judge else [])]

    @property
    def graded_metrics(self) -> list[str]:
        """The declared metrics scored by a model of their own, after every candidate has run."""
        return [name for name in self.metrics if metric_info(name).grader is not None]

    @property
    def model_graded(self) -> bool:
        """Whether a model scores this suite's answers after the candidates (the judge, or a model-graded
        metric): its items run last and its (suite, model) groups are never sharded."""
        return self.judge is not None or bool(self.graded_metrics)


SUBMISSION_VIEW = "submission_view"  # validation context key: the spec is SuiteSpec.as_submission's
SUBMISSION_CONTEXT = {SUBMISSION_VIEW: True}


def _check_submission(spec: SuiteSpec) -> None:
    """A submission answers multiple-choice questions from records an adapter can read without answers, with a
    prompt that needs no answer of them (few-shot examples would come from the hidden-answer split)."""
    if spec.task is not TaskType.multiple_choice:
        raise ValueError(f"submission: is for multiple-choice suites (a letter per question), not '{spec.task.value}'")
    if spec.prompt.fewshot is not None:
        raise ValueError(
            "submission: a few-shot prompt takes its examples' answers from the data, and the submission's data has "
            "none; a submission runs zero-shot (remove prompt.fewshot, or keep a zero-shot copy of the suite for it)"
        )
    if HIDDEN_ANSWERS not in ADAPTERS.get(spec.dataset.adapter).options.get("answers", ()):
        raise ValueError(
            f"submission: adapter '{spec.dataset.adapter}' cannot read records without answers (it has no "
            f"option answers: {HIDDEN_ANSWERS}); vmlu can"
        )


def _check_judge_gates(gates: list[Gate], rubric: Rubric) -> None:
    """Gates on judge metrics are on the rubric's scale: a threshold outside it could never decide anything."""
    for index, gate in enumerate(gates):
        if not gate.metric.startswith(JUDGE_PREFIX):
            continue
        outside = [
            value for value in (gate.min, gate.max) if value is not None and not rubric.low <= value <= rubric.high
        ]
        if gate.max_drop is not None and gate.max_drop > rubric.high - rubric.low:
            outside.append(gate.max_drop)
        if outside:
            raise ValueError(
                f"gates.{index}: {outside[0]:g} is outside the range of {gate.metric}, the rubric's scale "
                f"{rubric.low}-{rubric.high} (judge scores are not points)"
            )


@dataclass(frozen=True)
class Suite:
    """A validated suite together with the file it came from."""

    spec: SuiteSpec
    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.spec.name


def load_suite(path: Path) -> Suite:
    """Parse and validate a suite file; every problem is a SuiteError naming file, line and key."""
    raw, data, root = read_suite_yaml(path)
    if not isinstance(data, dict):
        got = "nothing (the file is empty)" if data is None else f"a {type(data).__name__}"
        raise SuiteError(f"{path}: a suite must be a mapping of keys (vnllmtest: 1, name: …), got {got}")
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(describe_validation(path, root, exc, SuiteSpec)) from None
    _check_templates(path, root, spec)
    return Suite(spec=spec, path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest())


def _check_templates(path: Path, root: yaml.Node, spec: SuiteSpec) -> None:
    templates = {("prompt", "template"): spec.prompt.template}
    if spec.prompt.system:
        templates[("prompt", "system")] = spec.prompt.system
    if spec.prompt.fewshot:
        templates[("prompt", "fewshot", "target")] = spec.prompt.fewshot.target
    for index, section in enumerate(spec.judge.sees if spec.judge else []):
        templates[("judge", "sees", str(index), "text")] = section.text
    for loc, source in templates.items():
        try:
            compile_template(source)
        except TemplateSyntaxError as exc:
            raise SuiteError(
                f"{path}:{line_of(root, loc)}: {'.'.join(loc)}: Jinja template syntax error on "
                f"line {exc.lineno} of the template: {shown(exc.message or '', 300)}"
            ) from None
        except TemplateError as exc:
            raise SuiteError(f"{path}:{line_of(root, loc)}: {'.'.join(loc)}: {shown(exc.message or '', 300)}") from None

