"""`vnllmtest compare --gate`: a stored run's recorded gates decided against another baseline by the checks a
run makes with `--baseline`. Its `max_drop` gates are checked again on the comparison; its absolute gates
(min, max) depend on that run alone and keep the result it recorded; the run's one verdict follows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pydantic import ValidationError

from vnllmtest.clipping import described, shown
from vnllmtest.comparison import Comparison
from vnllmtest.gates import GatesVerdict, recheck_relative, run_verdict
from vnllmtest.outcomes import GateResult, GroupSummary
from vnllmtest.report import gates_table
from vnllmtest.stored_run import SHOWN_CHARS, BaselineError, StoredRun
from vnllmtest.suite import Gate


@dataclass(frozen=True)
class GatedRun:
    """A stored run's gates against the comparison's baseline, and the verdict they give."""

    run: StoredRun
    comparison: Comparison
    groups: list[GroupSummary]
    verdict: GatesVerdict
    require_gates: bool

    def markdown(self) -> list[str]:
        """The verdict and the gates table, under a heading naming both runs."""
        baseline = self.comparison.baseline
        return [
            "",
            f"## Gates of {self.run.run_id} against baseline {baseline.run_id}",
            "",
            f"**{self.verdict.headline}**",
            "",
            f"`max_drop` gates are checked against {baseline.run_id}; the others as {self.run.run_id} recorded them.",
            "",
            *gates_table(self.groups, self.require_gates),
        ]


def gate_run(run: StoredRun, comparison: Comparison, require_gates: bool) -> GatedRun:
    """`run`'s recorded gates, its `max_drop` gates checked again on `comparison` (with the run's own
    --require-gates, or `require_gates`). Raises BaselineError naming the file for a run that records no
    `max_drop` gate (nothing to check against a baseline) or records gates without their specs."""
    groups, facts = run.recorded_gates()
    relative = 0
    for group in groups:
        checked = []
        for recorded in group.gates:
            gate = _declared(run, recorded)
            relative += gate.relative
            checked.append(recheck_relative(gate, recorded, comparison) if gate.relative else recorded)
        group.gates = checked
    if not relative:
        raise BaselineError(
            f"{run.summary_file}: the run records no max_drop gate, so there is nothing to check against a "
            "baseline (its suites declare no `max_drop` gate, or none of them was collected)"
        )
    facts = dataclasses.replace(
        facts,
        require_gates=facts.require_gates or require_gates,
        # exit status 1 is what failed gates give (checked here again) or failures the verdict counts itself
        exit_status=0 if facts.exit_status == 1 else facts.exit_status,
    )
    return GatedRun(run, comparison, groups, run_verdict(groups, facts), facts.require_gates)


def _declared(run: StoredRun, recorded: GateResult) -> Gate:
    """The gate as its suite declared it, from the spec the run recorded."""
    try:
        return Gate.model_validate(recorded.spec)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in ("spec", *error["loc"]))
        raise BaselineError(
            f"{run.summary_file}: gate '{shown(recorded.gate, SHOWN_CHARS)}' of {recorded.suite} [{recorded.model}]: "
            f"{key}: {error['msg']} (got {described(error.get('input'), SHOWN_CHARS)})"
        ) from None
