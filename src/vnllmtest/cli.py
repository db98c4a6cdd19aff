"""`vnllmtest compare BASELINE RUN [RUN ...] [--gate]`: compare finished runs from their report folders,
without loading any model, print Markdown and, with --gate, decide each run's recorded gates against the
baseline. Exit status: 0; 1 when a gate failed (--gate); 2 for bad arguments or a run that cannot be used."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vnllmtest.compare_gates import gate_run
from vnllmtest.comparison import Comparison, compare, defined_version
from vnllmtest.metric_table import scale_of
from vnllmtest.metrics import Estimate, estimate
from vnllmtest.outcomes import cluster_labels
from vnllmtest.report import comparison_markdown, markdown_row
from vnllmtest.stored_run import BaselineError, StoredRun, load_run


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.bootstrap_iterations < 1:
        parser.error("--bootstrap-iterations must be at least 1")
    if arguments.require_gates and not arguments.gate:
        parser.error("--require-gates needs --gate")
    iterations = arguments.bootstrap_iterations
    try:
        baseline = load_run(arguments.baseline)
        runs = [load_run(path) for path in arguments.runs]
        metrics = _metrics_by_suite(baseline, *runs)
        options = {"baseline_model": arguments.baseline_model, "iterations": iterations}
        comparisons = [compare(run.items, baseline, metrics, current_run=run, **options) for run in runs]
        gated = [gate_run(*pair, arguments.require_gates) for pair in zip(runs, comparisons)] if arguments.gate else []
    except BaselineError as exc:
        print(f"vnllmtest compare: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(compare_markdown(baseline, runs, comparisons, iterations))
    sys.stdout.write("".join(line + "\n" for gates in gated for line in gates.markdown()))
    return 0 if all(gates.verdict.passed for gates in gated) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vnllmtest", description="Vietnamese LLM benchmarks as pytest tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "compare",
        help="compare runs item by item against the first one",
        description="Compare report folders (or their summary.json / items.jsonl) against the first one: "
        "metrics with 95%% CIs, paired differences with p-values, and the flipped items, as Markdown. Metrics "
        "whose stored definition versions differ between two runs are listed, not compared. With --gate, each "
        "run's recorded max_drop gates are checked against the baseline as `pytest --baseline` checks them "
        "(its other gates keep the result it recorded), and a failed gate exits 1. A bad argument, or a run "
        "that cannot be read (or, with --gate, records no max_drop gate), exits 2.",
    )
    command.add_argument("baseline", type=Path, help="the run to compare against")
    command.add_argument("runs", type=Path, nargs="+", help="runs to compare with the baseline")
    command.add_argument("--baseline-model", metavar="LABEL", help="which of the baseline's models to pair with")
    command.add_argument(
        "--bootstrap-iterations",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for CIs (permutation p-values use at least 10,000 draws)",
    )
    command.add_argument(
        "--gate",
        action="store_true",
        help="check each run's recorded max_drop gates against the baseline; exit 1 when a gate fails",
    )
    command.add_argument(
        "--require-gates",
        action="store_true",
        help="with --gate: a gate not evaluated (the run covered part of a suite) fails",
    )
    return parser


def compare_markdown(
    baseline: StoredRun, runs: Sequence[StoredRun], comparisons: Sequence[Comparison], iterations: int
) -> str:
    """One metric table over every run, then each run's paired comparison with the baseline."""
    lines = [f"# vnllmtest comparison against {baseline.run_id}", ""]
    lines += _metric_table([baseline, *runs], iterations)
    for run, comparison in zip(runs, comparisons, strict=True):
        lines += ["", f"# {run.run_id} (`{run.path}`)"]
        lines += comparison_markdown(comparison)
    return "\n".join(lines) + "\n"


def _metric_table(runs: Sequence[StoredRun], iterations: int) -> list[str]:
    """`| Dataset | Metric | model (run) ... |`, recomputed from each run's items as its report did; a
    row whose runs used different definitions of the metric tags each cell with its version."""
    columns = [(run, model) for run in runs for model in dict.fromkeys(item.model for item in run.items)]
    header = ["Dataset", "Metric", *(f"{model} ({run.run_id})" for run, model in columns)]
    lines = [markdown_row(header), markdown_row(["---"] * len(header))]
    unknown: dict[str, None] = {}
    for suite, names in _metrics_by_suite(*runs).items():
        for metric in names:
            if defined_version(metric) is None:
                unknown[metric] = None
                continue
            versions = [run.definition_version(metric) for run, _ in columns]
            cells = [_estimate(run, suite, model, metric, iterations).describe() for run, model in columns]
            if len(set(versions)) > 1:
                cells = [f"{cell} (v{'?' if v is None else v})" for cell, v in zip(cells, versions)]
            lines.append(markdown_row([suite, metric, *cells]))
    if unknown:
        names = ", ".join(f"`{name}`" for name in unknown)
        lines += ["", f"Not shown: {names}, which this vnllmtest does not define (runs from an older version)."]
    return lines


def _estimate(run: StoredRun, suite: str, model: str, metric: str, iterations: int) -> Estimate:
    having = [
        item
        for item in run.items
        if (item.suite, item.model) == (suite, model) and item.status != "error" and metric in item.metrics
    ]
    values = [item.metrics[metric] for item in having]
    return estimate(values, scale=scale_of(metric), iterations=iterations, clusters=cluster_labels(having))


def _metrics_by_suite(*runs: StoredRun) -> dict[str, list[str]]:
    """Each suite's metric names in the order the runs' items first give them."""
    found: dict[str, dict[str, None]] = {}
    for run in runs:
        for item in run.items:
            found.setdefault(item.suite, {}).update(dict.fromkeys(item.metrics))
    return {suite: list(names) for suite, names in sorted(found.items())}
