"""Suite gates, in one place: each gate's check on one (suite, model) group (after any baseline
comparison), the two rules that keep a gate from deciding on the wrong evidence (a run that covered
part of a suite, a judge whose verdicts could not be read), and the run's one verdict on its gates,
which every output renders."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from vnllmtest.metric_table import JUDGE_PREFIX
from vnllmtest.outcomes import GateResult, GateState, GroupSummary, RunFacts, RunScope
from vnllmtest.suite import Gate, SuiteSpec

if TYPE_CHECKING:
    from vnllmtest.comparison import Comparison
    from vnllmtest.metrics import Estimate

STATES = ("passed", "failed", "skipped", "not_evaluated")
UNDECIDED = ("skipped", "not_evaluated")  # states that neither pass nor fail a gate
MIN_SCORED_SHARE = 95.0  # points: a gate on fewer scored items (errors aside) would judge a biased subset


def check_gates(
    summaries: Sequence[GroupSummary],
    specs: Mapping[str, SuiteSpec],
    comparison: Comparison | None = None,
    scope: RunScope | None = None,
) -> list[GroupSummary]:
    """Check every suite's gates on each of its groups (gates against a baseline use `comparison`, and
    are skipped without one; with `scope`, a group with fewer items than its suite plans leaves its
    gates not evaluated). Sets each summary's `gates` and returns the summaries."""
    for summary in summaries:
        summary.gates = evaluate_gates(specs[summary.suite], summary, comparison, scope)
    return list(summaries)


def evaluate_gates(
    spec: SuiteSpec,
    summary: GroupSummary,
    comparison: Comparison | None,
    scope: RunScope | None,
) -> list[GateResult]:
    """Every gate of the suite on this group: not evaluated when the group is part of its suite;
    a gate on a `judge_*` metric fails when too few judged items have a readable verdict, and a gate
    on any other metric when too few items could be scored on it."""
    checked = [
        _check_relative(gate, summary, comparison) if gate.relative else _check(gate, summary) for gate in spec.gates
    ]
    shortfall = scope.shortfall(summary.planned, summary.items) if scope else None
    if shortfall is not None:
        return [
            dataclasses.replace(found, state="not_evaluated", reason=shortfall, rule=shortfall) for found in checked
        ]
    unreadable = coverage_shortfall(spec, summary)
    failed = []
    for found in checked:
        judged = found.metric.startswith(JUDGE_PREFIX)
        why = unreadable if judged else unscored_shortfall(summary, found.metric)
        failed.append(found if why is None else dataclasses.replace(found, state="failed", reason=why, rule=why))
    return failed


def unscored_shortfall(summary: GroupSummary, metric: str) -> str | None:
    """Why a gate on `metric` would judge a biased part of the group: fewer than MIN_SCORED_SHARE of
    its items (errors aside) could be scored on it (no log-probabilities, say); None otherwise."""
    unscored = summary.unscored.get(metric, 0)
    total = summary.metrics[metric].n + unscored
    if not unscored or 100.0 * (total - unscored) / total >= MIN_SCORED_SHARE:
        return None
    return f"{unscored} of {total} items could not be scored on {metric} (at least {MIN_SCORED_SHARE:g}% must be)"


def coverage_shortfall(spec: SuiteSpec, summary: GroupSummary) -> str | None:
    """Why the judge's scores cannot be trusted for this group (too few readable verdicts among the
    judged items), or None when they can."""
    if spec.judge is None:
        return None
    floor = spec.judge.min_coverage
    readable, judged = summary.verdicts or (0, 0)
    if not judged:
        return "no item was judged (verdict coverage n/a)"
    coverage = 100.0 * readable / judged
    if coverage >= floor:
        return None
    shown = math.floor(coverage * 10) / 10  # never rounded up to the floor it missed
    missing = f"{judged - readable} of {judged} items without a readable verdict"
    return f"verdict coverage {shown:.1f} < {floor:g} ({missing})"


def describe_gate(gate: Gate) -> str:
    bound = "" if gate.bound == "value" else f" ({gate.bound})"
    if gate.relative:
        significance = "" if gate.significance is None else f", p < {gate.significance:g}"
        return f"{gate.metric} drop <= {gate.max_drop:g} vs baseline{bound}{significance}"
    parts = []
    if gate.min is not None:
        parts.append(f">= {gate.min:g}")
    if gate.max is not None:
        parts.append(f"<= {gate.max:g}")
    return f"{gate.metric} {' and '.join(parts)}{bound}"


def _bound(found: Estimate, bound: str) -> float:
    return {"value": found.value, "ci_low": found.low, "ci_high": found.high}[bound]


def _verdict(passed: bool) -> GateState:
    return "passed" if passed else "failed"


def _result(gate: Gate, summary: GroupSummary) -> partial[GateResult]:
    """A GateResult of `gate` on `summary`'s group, waiting for value, state, reason and detail."""
    return partial(GateResult, summary.suite, summary.model, gate.metric, describe_gate(gate), spec=gate.model_dump())


def _check(gate: Gate, summary: GroupSummary) -> GateResult:
    result = _result(gate, summary)
    found = summary.metrics[gate.metric]
    value = _bound(found, gate.bound)
    if found.n == 0:
        return result(value, "failed", "no scored items", detail="n/a")
    if math.isnan(value):
        return result(value, "failed", "value is NaN", detail="n/a")
    passed = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
    return result(value, _verdict(passed), "" if passed else "threshold not met", detail=found.describe())


def _check_relative(gate: Gate, summary: GroupSummary, comparison: Comparison | None) -> GateResult:
    """Fails when the paired difference (or its chosen CI bound) falls more than max_drop below zero,
    and, with `significance`, only when the drop is significant too."""
    result = _result(gate, summary)
    if comparison is None:
        return result(math.nan, "skipped", "no --baseline given", detail="n/a")
    incomparable = comparison.incomparable_reason(summary.suite, summary.model, gate.metric)
    if incomparable is not None:
        return result(math.nan, "failed", incomparable, detail="n/a")
    found = comparison.difference(summary.suite, summary.model, gate.metric)
    if found is None or found.shared == 0:
        return result(math.nan, "failed", "no item scored on it by both this run and the baseline", detail="n/a")
    value = _bound(found.difference, gate.bound)
    levels = () if gate.significance is None else (gate.significance,)
    detail = f"{found.difference.describe(signed=True)}, p={found.describe_p(levels)}, {found.shared} items"
    if math.isnan(value):
        return result(value, "failed", "difference is NaN", detail=detail)
    dropped = value < -gate.max_drop
    significant = gate.significance is None or found.p_value < gate.significance
    if dropped and significant:
        reason = f"dropped {-value:.1f} > {gate.max_drop:g} against {found.baseline_model}"
        return result(value, "failed", reason, detail=detail)
    reason = "" if not dropped else f"drop of {-value:.1f} is not significant (p={found.p_value:.3g})"
    return result(value, "passed", reason, detail=detail)


def recheck_relative(gate: Gate, recorded: GateResult, comparison: Comparison) -> GateResult:
    """`gate`, a `max_drop` gate a stored run recorded as `recorded`, checked again against `comparison`'s
    baseline as a run with that --baseline checks it; a gate its run's own items decided (`rule`: part of
    the suite ran, too few items scored) keeps that decision."""
    found = _check_relative(gate, GroupSummary(recorded.suite, recorded.model), comparison)
    if recorded.rule:
        return dataclasses.replace(found, state=recorded.state, reason=recorded.rule, rule=recorded.rule)
    return found


def gate_outcome(state: str, reason: str, require_gates: bool) -> tuple[str, str]:
    """How a gate reads in this run's outputs: ("pass" | "FAIL" | "skipped" | "not evaluated", why).
    With --require-gates a gate that was skipped or not evaluated fails."""
    words = {"passed": "pass", "failed": "FAIL", "skipped": "skipped", "not_evaluated": "not evaluated"}
    word = words.get(state, "FAIL")
    if require_gates and state in UNDECIDED:
        return "FAIL", f"{word}, which --require-gates forbids: {reason}"
    return word, reason


@dataclass(frozen=True)
class GatesVerdict:
    """The run's verdict on its gates. `passed` (summary.json's gates_passed): the run finished, every
    suite was collected, no item errored, no other test failed and no gate failed (nor, with --require-gates, went
    undecided). `evaluated` (gates_evaluated): every gate was decided on whole suites."""

    passed: bool
    evaluated: bool
    headline: str


NO_GATES = "No gates declared."
NO_GATES_SUBMISSION = "No gates: a --submission run has hidden answers, so nothing is scored."


def run_verdict(summaries: Sequence[GroupSummary], facts: RunFacts) -> GatesVerdict:
    """The run's verdict on its gates, from the groups and the run's facts."""
    return gates_verdict(
        (gate.state for summary in summaries for gate in summary.gates),
        errored=sum(summary.statuses.get("error", 0) for summary in summaries),
        complete=facts.complete,
        uncollected=len(facts.collection_errors),
        other_failures=len(facts.other_failures),
        cache_faults=len(facts.cache_faults),
        forbidden_misses=sum(s.statuses.get("missed", 0) for s in summaries) if facts.strict_items else 0,
        exit_status=facts.exit_status,
        require_gates=facts.require_gates,
        report_written=not facts.report_error,
        no_gates=NO_GATES_SUBMISSION if facts.submission else NO_GATES,
    )


def gates_verdict(
    states: Iterable[str],
    *,
    errored: int = 0,
    complete: bool = True,
    uncollected: int = 0,
    other_failures: int = 0,
    cache_faults: int = 0,
    forbidden_misses: int = 0,
    require_gates: bool = False,
    report_written: bool = True,
    exit_status: int = 0,
    no_gates: str = NO_GATES,
) -> GatesVerdict:
    """The one verdict the terminal, summary.json, summary.md and report.html all show, from the
    gates' states and what else went wrong in the run."""
    counts = Counter(state if state in STATES else "failed" for state in states)
    total = sum(counts.values())
    undecided = sum(counts[state] for state in UNDECIDED)
    whole = complete and not uncollected
    evaluated = whole and undecided == 0
    problems = []
    if counts["failed"]:
        problems.append(f"{counts['failed']} of {total} gates failed")
    if require_gates and undecided:
        problems.append(f"{undecided} of {total} gates not evaluated, which --require-gates forbids")
    if errored:
        problems.append(f"{errored} item{'s' * (errored != 1)} errored")
    if uncollected:
        problems.append(f"{uncollected} suite{'s' * (uncollected != 1)} could not be collected")
    if forbidden_misses:
        problems.append(f"{forbidden_misses} item{'s' * (forbidden_misses != 1)} missed, which --strict-items forbids")
    if other_failures:
        problems.append(f"{other_failures} other test{'s' * (other_failures != 1)} failed")
    if cache_faults:
        problems.append("the prediction cache failed, so finished work was not kept")
    if not complete:
        problems.append("the run stopped early")
    if not report_written:
        problems.append("the report could not be written")
    if exit_status and not problems:  # whatever else failed the run, the verdict must not say it passed
        problems.append(f"the test run failed (exit status {exit_status})")
    passed = whole and not problems
    if problems:
        return GatesVerdict(False, evaluated, "Gates not passed: " + "; ".join(problems) + ".")
    if total == 0:
        return GatesVerdict(passed, evaluated, no_gates)
    if undecided:
        parts = []
        if counts["not_evaluated"]:
            parts.append(f"{counts['not_evaluated']} not evaluated (the run covered part of a suite)")
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} skipped (no --baseline)")
        headline = f"No gate failed, but {counts['passed']} of {total} passed: {'; '.join(parts)}."
        return GatesVerdict(passed, evaluated, headline)
    return GatesVerdict(passed, evaluated, "All gates passed.")
