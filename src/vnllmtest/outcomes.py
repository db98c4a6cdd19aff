"""The typed outcome of a run, below everything that computes or shows it: each item's result (its
items.jsonl line), each (suite, model) group's summary with its gate results, what the run set out to
cover, and the run's facts that summary.json records."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from vnllmtest.metrics.stats import Estimate

STATUSES = ("passed", "missed", "error")
GateState = Literal["passed", "failed", "skipped", "not_evaluated"]
SUBSET = "a subset chosen by -k, -m, --lf, --deselect or node ids"


@dataclass(frozen=True)
class ItemResult:
    """Everything known about one item of one model: the line it gets in items.jsonl."""

    suite: str
    model: str
    id: str
    status: str  # "passed", "missed" or "error"
    failure_class: str | None = None
    message: str | None = None
    origin: str = ""
    prompt: str | None = None
    references: list[str] = field(default_factory=list)
    output: str | None = None
    answer: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    mode: str | None = None
    finish_reason: str | None = None
    new_tokens: int = 0
    cache_key: str | None = None
    cached: bool = False
    choice_logprobs: dict[str, float] | None = None
    loglik_answer: str | None = None  # multiple choice: the option the log-probabilities chose
    thinking: str | None = None
    thinking_tokens: int = 0
    truncation: dict[str, Any] | None = None
    original_text: dict[str, Any] = field(default_factory=dict)
    judges: list[dict[str, Any]] = field(default_factory=list)  # one verdict per --judge, the first scores
    tags: dict[str, str] = field(default_factory=dict)
    cluster: str | None = None  # the suite's `cluster_by` value: CIs resample whole clusters

    def to_record(self) -> dict[str, Any]:
        """The item's line in items.jsonl."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ItemResult:
        """An items.jsonl line (of this run, or a stored one already checked) as a result; fields an
        older vnllmtest did not write keep their defaults, and fields it no longer knows are left out."""
        return cls(**{name: record[name] for name in _ITEM_FIELDS if name in record})


_ITEM_FIELDS = tuple(f.name for f in dataclasses.fields(ItemResult))


@dataclass(frozen=True)
class GateResult:
    """One gate checked on one (suite, model) group.

    `state`: passed or failed; skipped (a gate against --baseline in a run without one);
    not_evaluated (the run covered part of the suite; `value` and `detail` then describe only that part).
    `spec`: the gate as its suite declares it (metric, min, max, max_drop, bound, significance), so that
    `vnllmtest compare --gate` can check a stored run's `max_drop` gates again against another baseline.
    `rule`: why the group's own items decided the gate, whatever its threshold (part of the suite ran, too
    few items were scored or judged readably); empty when the threshold decided. Any baseline keeps it."""

    suite: str
    model: str
    metric: str
    gate: str  # readable form, e.g. "accuracy >= 25 (ci_low)"
    value: float  # what the threshold was checked against
    state: GateState
    reason: str = ""
    detail: str = ""  # the estimate behind `value`, e.g. "33.3 [15.0, 55.0]"
    spec: dict[str, Any] = field(default_factory=dict)
    rule: str = ""

    @property
    def passed(self) -> bool:
        return self.state == "passed"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class RunScope:
    """What a run set out to evaluate: for each suite, the items its sampling selects from the chosen
    source before --limit (`planned`), the --limit, and whether the run stopped early. A group that
    received fewer items than planned covered part of its suite: its gates are not evaluated."""

    planned: Mapping[str, int]
    limit: int | None = None
    stopped: bool = False

    def shortfall(self, planned: int | None, ran: int) -> str | None:
        """Why a group of `ran` items is not its whole suite, or None when it is."""
        if planned is None or ran >= planned:
            return None
        causes = []
        if self.stopped:
            causes.append("the run stopped early")
        if self.limit is not None and self.limit < planned:
            causes.append(f"--limit {self.limit}")
        if not self.stopped and ran < min(planned, self.limit or planned):
            causes.append(SUBSET)
        return "; ".join([f"{ran} of {planned} items ran", *causes])


@dataclass
class GroupSummary:
    """One suite evaluated by one model."""

    suite: str
    model: str
    items: int = 0
    planned: int | None = None  # items the suite selects before --limit (None: not known, taken as whole)
    cluster_by: str | None = None
    clusters: int = 0  # distinct cluster labels among the items (0: items are independent)
    statuses: Counter = field(default_factory=Counter)
    failure_classes: Counter = field(default_factory=Counter)
    truncated: int = 0  # items whose prompt a token budget shortened
    thinking_tokens: int = 0  # tokens spent inside <think> blocks
    metrics: dict[str, Estimate] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)  # per metric: items (not errors) without a value
    verdicts: tuple[int, int] | None = None  # judged suites: (readable first-judge verdicts, items judged)
    breakdowns: dict[str, dict[str, dict[str, Estimate]]] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)  # filled by vnllmtest.gates.check_gates
    judge_agreement: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


@dataclass
class RunFacts:
    """What happened to the run as a whole: summary.json's `run` object."""

    id: str = ""
    started: str = ""
    finished: str = ""
    complete: bool = True
    require_gates: bool = False
    strict_items: bool = False
    exit_status: int = 0
    collection_errors: list[dict[str, str]] = field(default_factory=list)  # {"path", "error"} per suite
    other_failures: list[str] = field(default_factory=list)  # failed tests that are not suite items
    cache_faults: list[str] = field(default_factory=list)
    report_error: str | None = None
    submission: bool = False  # --submission: answers hidden, nothing scored, no gates

    def to_json(self) -> dict[str, Any]:
        found = dataclasses.asdict(self)
        if found["report_error"] is None:
            del found["report_error"]
        return found


def cluster_labels(items: Sequence[ItemResult]) -> list[str] | None:
    """Each item's cluster (its own id when it has none), or None when no item is clustered."""
    if not any(item.cluster for item in items):
        return None
    return [item.cluster or f"item:{item.id}" for item in items]
