"""The `vnllmtest` command, on finished runs' report folders, without loading any model.

`vnllmtest compare BASELINE RUN [RUN ...] [--gate]`: compare runs, print Markdown and, with --gate, decide
each run's recorded gates against the baseline. Exit status: 0; 1 when a gate failed (--gate); 2 for bad
arguments or a run that cannot be used.

`vnllmtest trend RUN RUN [RUN ...]`: a trend over checkpoints, written as trend.html and trend.md (printed
too). Exit status: 0; 1 with --fail-on-drop when a step is a significant drop or tested nothing; 2 for bad
arguments, a run that cannot be used or a page that cannot be written."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vnllmtest.compare_gates import gate_run
from vnllmtest.comparison import Comparison, compare, defined_version
from vnllmtest.report import comparison_markdown, markdown_row
from vnllmtest.stored_estimates import metrics_by_suite, run_estimate
from vnllmtest.stored_run import BaselineError, StoredRun, load_run
from vnllmtest.trend import build_trend, load_points, reference_index
from vnllmtest.trend_html import render_trend_html
from vnllmtest.trend_markdown import trend_markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "trend":
        return _trend(arguments)
    if arguments.bootstrap_iterations < 1:
        parser.error("--bootstrap-iterations must be at least 1")
    if arguments.require_gates and not arguments.gate:
        parser.error("--require-gates needs --gate")
    iterations = arguments.bootstrap_iterations
    try:
        baseline = load_run(arguments.baseline)
        runs = [load_run(path) for path in arguments.runs]
        metrics = metrics_by_suite(baseline, *runs)
        options = {"baseline_model": arguments.baseline_model, "iterations": iterations}
        comparisons = [compare(run.items, baseline, metrics, current_run=run, **options) for run in runs]
        gated = [gate_run(*pair, arguments.require_gates) for pair in zip(runs, comparisons)] if arguments.gate else []
        text = compare_markdown(baseline, runs, comparisons, iterations)  # reads each run's recorded bootstrap
    except BaselineError as exc:
        print(f"vnllmtest compare: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    sys.stdout.write("".join(line + "\n" for gates in gated for line in gates.markdown()))
    return 0 if all(gates.verdict.passed for gates in gated) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vnllmtest", description="Vietnamese LLM benchmarks as pytest tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "compare",
        help="compare runs item by item against the first one",
        description="Compare report folders (or their summary.json / items.jsonl) against the first one: "
        "metrics with 95% CIs, paired differences with p-values, and the flipped items, as Markdown. Metrics "
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
        help="bootstrap resamples for the paired differences' CIs, and for a run's own metrics when it recorded none "
        "(permutation p-values use at least 10,000 draws)",
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
    _trend_parser(commands)
    return parser


def _trend_parser(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "trend",
        help="a trend report over checkpoints' runs",
        description="One point per run (report folder, or its summary.json / items.jsonl), in the order given: "
        "each metric per suite with its 95% CI, each step compared with the previous point (or --reference) by "
        "the paired tests of `compare`, p-values adjusted by Holm's method across every step and metric tested, "
        "and the items that flipped. Writes trend.html and trend.md into --out and prints the Markdown. Exits 0; "
        "1 with --fail-on-drop when a step is a significant drop or tested nothing; 2 for a bad argument, a run "
        "that cannot be read or a page that cannot be written.",
    )
    command.set_defaults(usage_error=command.error)
    command.add_argument("runs", type=Path, nargs="+", help="the checkpoints' runs, in order (at least two)")
    command.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LABEL",
        help="the model to take from each run: once for every run, or once per run in order; needed for runs "
        "that hold several models",
    )
    command.add_argument(
        "--reference",
        metavar="N|PATH",
        help="compare every point with this one (its number from 1, or its path) instead of the previous point",
    )
    command.add_argument("--alpha", type=float, default=0.05, help="level for the Holm-adjusted p-values (0.05)")
    command.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="where to write (this folder)")
    command.add_argument(
        "--bootstrap-iterations",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for the steps' differences, and for a run that did not record its own",
    )
    command.add_argument(
        "--fail-on-drop", action="store_true", help="exit 1 when a step is a significant drop or tested nothing"
    )


def _trend(arguments: argparse.Namespace) -> int:
    """`vnllmtest trend`: the trend's pages written, its Markdown printed."""
    if len(arguments.runs) < 2:
        arguments.usage_error("trend needs at least two runs")
    if not 0.0 < arguments.alpha < 1.0:
        arguments.usage_error(f"--alpha must be between 0 and 1, got {arguments.alpha:g}")
    if arguments.bootstrap_iterations < 1:
        arguments.usage_error("--bootstrap-iterations must be at least 1")
    try:
        reference = reference_index(arguments.reference, arguments.runs)
        points = load_points(arguments.runs, arguments.model)
        trend = build_trend(points, reference, arguments.alpha, arguments.bootstrap_iterations)
    except BaselineError as exc:
        print(f"vnllmtest trend: {exc}", file=sys.stderr)
        return 2
    markdown = trend_markdown(trend)
    written = [(arguments.out / "trend.html", render_trend_html(trend)), (arguments.out / "trend.md", markdown)]
    try:
        arguments.out.mkdir(parents=True, exist_ok=True)
        for path, text in written:
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"vnllmtest trend: {arguments.out}: cannot write the trend ({exc.strerror or exc})", file=sys.stderr)
        return 2
    sys.stdout.write(markdown)
    print(f"vnllmtest trend: wrote {written[0][0]} and {written[1][0]}", file=sys.stderr)
    for step in trend.idle_steps:
        name = trend.step_name(trend.steps[step])
        gate = ": --fail-on-drop cannot pass it" if arguments.fail_on_drop else ""
        print(f"vnllmtest trend: step {name} tested nothing ({trend.idle_reason(step)}){gate}", file=sys.stderr)
    return 1 if arguments.fail_on_drop and (trend.drops or trend.idle_steps) else 0


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
    for suite, names in metrics_by_suite(*runs).items():
        for metric in names:
            if defined_version(metric) is None:
                unknown[metric] = None
                continue
            versions = [run.definition_version(metric) for run, _ in columns]
            cells = [run_estimate(run, suite, model, metric, iterations).describe() for run, model in columns]
            if len(set(versions)) > 1:
                cells = [f"{cell} (v{'?' if v is None else v})" for cell, v in zip(cells, versions)]
            lines.append(markdown_row([suite, metric, *cells]))
    if unknown:
        names = ", ".join(f"`{name}`" for name in unknown)
        lines += ["", f"Not shown: {names}, which this vnllmtest does not define (runs from an older version)."]
    return lines
