"""`vnllmtest compare BASELINE RUN [RUN ...]`: compare finished runs from their report folders,
without loading any model, and print Markdown."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vnllmtest.outcomes import cluster_labels
from vnllmtest.comparison import compare, defined_version
from vnllmtest.stored_run import BaselineError, StoredRun, load_run
from vnllmtest.metric_table import scale_of
from vnllmtest.metrics import Estimate, estimate
from vnllmtest.report import comparison_markdown, markdown_row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vnllmtest", description="Vietnamese LLM benchmarks as pytest tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "compare",
        help="compare runs item by item against the first one",
        description="Compare report folders (or their summary.json / items.jsonl) against the first one: "
        "metrics with 95%% CIs, paired differences with p-values, and the flipped items, as Markdown. Metrics "
        "whose stored definition versions differ between two runs are listed, not compared.",
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
    arguments = parser.parse_args(argv)
    if arguments.bootstrap_iterations < 1:
        parser.error("--bootstrap-iterations must be at least 1")
    try:
        baseline = load_run(arguments.baseline)
        runs = [load_run(path) for path in arguments.runs]
        text = compare_markdown(baseline, runs, arguments.baseline_model, arguments.bootstrap_iterations)
    except BaselineError as exc:
        print(f"vnllmtest compare: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def compare_markdown(
    baseline: StoredRun, runs: Sequence[StoredRun], baseline_model: str | None, iterations: int
) -> str:
    """One metric table over every run, then each run's paired comparison with the baseline."""
    lines = [f"# vnllmtest comparison against {baseline.run_id}", ""]
    lines += _metric_table([baseline, *runs], iterations)
    metrics = _metrics_by_suite(baseline, *runs)
    for run in runs:
        comparison = compare(
            run.items, baseline, metrics, baseline_model=baseline_model, iterations=iterations, current_run=run
        )
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
