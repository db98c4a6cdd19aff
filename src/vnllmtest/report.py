"""Run reports in one folder per run: summary.json, summary.md (one column per model), items.jsonl,
report.html and, against a baseline, flipped.txt (the flipped items as pytest arguments)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vnllmtest.aggregate import MAX_BREAKDOWN_VALUES
from vnllmtest.comparison import Comparison
from vnllmtest.gates import GatesVerdict, gate_outcome
from vnllmtest.metric_table import definitions, metric_info
from vnllmtest.outcomes import STATUSES, GateResult, GroupSummary, ItemResult, RunFacts
from vnllmtest.report_html import render_html

FLIPPED_FILE = "flipped.txt"


def new_run_folder(report_dir: Path) -> Path:
    """A fresh folder `report_dir/YYYYmmdd-HHMMSS[-N]`; raises OSError when it cannot be written."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    report_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        folder = report_dir / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise OSError(f"{report_dir}: no free run folder name for {stamp}")


@dataclass(frozen=True)
class RunReport:
    """Everything a run's report shows: the groups with their gates, the item records, the manifest,
    the run's facts, the one verdict on its gates (vnllmtest.gates.run_verdict) and any comparison."""

    summaries: Sequence[GroupSummary]
    items: Sequence[ItemResult]
    manifest: Mapping[str, Any]
    facts: RunFacts
    verdict: GatesVerdict
    comparison: Comparison | None = None


def summary_document(report: RunReport) -> dict:
    summaries = report.summaries
    document = {
        "run": report.facts.to_json(),
        "gates_passed": report.verdict.passed,
        "gates_evaluated": report.verdict.evaluated,
        "gates_verdict": report.verdict.headline,
        "results": [_group_json(s) for s in summaries],
        "metric_definitions": definitions(sorted({name for s in summaries for name in s.metrics})),
        "manifest": dict(report.manifest),
    }
    if report.comparison is not None:
        document["comparison"] = report.comparison.to_json()
    return document


def _submission_lines(files: Sequence[Mapping[str, Any]]) -> list[str]:
    """A --submission run's leaderboard files (its questions have hidden answers, so nothing is scored)."""
    if not files:
        return []
    intro = "The answers are hidden, so nothing was scored and no gate applies. The files are beside this one:"
    lines = ["## Leaderboard submission", "", intro, ""]
    return lines + [f"- {record['description']}" for record in files] + [""]


def _group_json(summary: GroupSummary) -> dict[str, Any]:
    return {
        "suite": summary.suite,
        "model": summary.model,
        "items": summary.items,
        "suite_items": summary.planned,
        "cluster_by": summary.cluster_by,
        "clusters": summary.clusters,
        "statuses": {status: summary.statuses.get(status, 0) for status in STATUSES},
        "failure_classes": dict(summary.failure_classes),
        "truncated": summary.truncated,
        "thinking_tokens": summary.thinking_tokens,
        "metrics": {name: asdict(found) for name, found in summary.metrics.items()},
        "unscored": dict(summary.unscored),
        "breakdowns": {
            tag: {value: {m: asdict(e) for m, e in metrics.items()} for value, metrics in groups.items()}
            for tag, groups in summary.breakdowns.items()
        },
        "gates": [gate.to_json() for gate in summary.gates],
        "judge_agreement": summary.judge_agreement,
    }


def markdown(report: RunReport) -> str:
    summaries, manifest, facts = report.summaries, report.manifest, report.facts
    seen = {s.model for s in summaries}
    models = [m for m in manifest.get("models", {}) if m in seen] + sorted(seen - set(manifest.get("models", {})))
    by_key = {(s.suite, s.model): s for s in summaries}
    suites = sorted({s.suite for s in summaries})
    lines = [f"# vnllmtest run {facts.id}", ""]
    if not facts.complete:
        lines += ["**Incomplete run**: interrupted or stopped early; numbers cover the items that finished.", ""]
    scored = any(s.metrics for s in summaries)
    if scored:
        lines += [
            "Values are points (0-100), judge scores (`judge_*`) are on the rubric's scale (1-10); "
            "all with 95% bootstrap confidence intervals.",
            "",
        ]
        lines += [
            f"- `{s.suite}` resamples whole clusters of items sharing `{s.cluster_by}` ({s.clusters} clusters)."
            for s in summaries
            if s.cluster_by and s.model == models[0]
        ]
        lines += [""] if lines[-1] != "" else []
        lines += [markdown_row(["Dataset", "Metric", *models]), markdown_row(["---"] * (2 + len(models)))]
    lines += _submission_lines(manifest.get("submissions", []))
    for suite in suites:
        metric_names = next(s.metrics for s in summaries if s.suite == suite)
        for metric in metric_names:
            cells = [describe_metric(by_key[(suite, m)], metric) if (suite, m) in by_key else "—" for m in models]
            lines.append(markdown_row([suite, metric, *cells]))
    lines += _definition_lines(summaries)
    lines += _breakdown_rows(summaries, models)
    lines += _agreement_rows(summaries)
    if report.comparison is not None:
        lines += comparison_markdown(report.comparison)
    if facts.collection_errors:
        lines += ["", "## Not evaluated", "", "These suites could not be collected, so none of their gates passed:", ""]
        lines += [f"- `{failed['path']}`: {' '.join(failed['error'].split())}" for failed in facts.collection_errors]
    lines += ["", "## Gates", "", f"**{report.verdict.headline}**", "", *gates_table(summaries, facts.require_gates)]
    header = ["Dataset", "Model", "Items", *STATUSES, "Truncated prompts", "Thinking tokens", "Failure classes"]
    lines += ["", "## Items", "", markdown_row(header), markdown_row(["---"] * len(header))]
    for summary in summaries:
        classes = ", ".join(f"{name}: {count}" for name, count in sorted(summary.failure_classes.items())) or "—"
        counts = [str(summary.statuses.get(status, 0)) for status in STATUSES]
        extra = [str(summary.truncated), str(summary.thinking_tokens)]
        lines.append(markdown_row([summary.suite, summary.model, str(summary.items), *counts, *extra, classes]))
    lines += ["", "## Data", ""]
    for name, suite in sorted(manifest.get("suites", {}).items()):
        lines.append(f"- `{name}`: {suite.get('data_origin', '?')}")
        lines += [f"  - note: {note}" for note in suite.get("data_notes") or []]
    return "\n".join(lines) + "\n"


def _definition_lines(summaries: Sequence[GroupSummary]) -> list[str]:
    """What each reported metric computes, and its definition version (runs compare only on equal versions)."""
    names = sorted({name for s in summaries for name in s.metrics})
    return ["", *(f"- `{name}` (v{metric_info(name).version}): {metric_info(name).summary}" for name in names)]


def describe_metric(summary: GroupSummary, metric: str) -> str:
    """`33.3 [15.0, 55.0]`, followed by how many items had no value for the metric, when any."""
    unscored = summary.unscored.get(metric, 0)
    shown = summary.metrics[metric].describe()
    return f"{shown} ({unscored} unscored)" if unscored else shown


def gates_table(summaries: Sequence[GroupSummary], require_gates: bool) -> list[str]:
    """`| Dataset | Model | Gate | Checked value | Estimate | Result |`, a row per gate of each group."""
    header = ["Dataset", "Model", "Gate", "Checked value", "Estimate", "Result"]
    lines = [markdown_row(header), markdown_row(["---"] * len(header))]
    for gate in (gate for summary in summaries for gate in summary.gates):
        value = "n/a" if math.isnan(gate.value) else f"{gate.value:.1f}"
        verdict = gate_verdict(gate, require_gates)
        lines.append(markdown_row([gate.suite, gate.model, gate.gate, value, gate.detail, verdict]))
    return lines


def gate_verdict(gate: GateResult, require_gates: bool) -> str:
    word, why = gate_outcome(gate.state, gate.reason, require_gates)
    word = "**FAIL**" if word == "FAIL" else word
    return f"{word} ({why})" if why else word


def comparison_markdown(comparison: Comparison, listed_ids: int = 20) -> list[str]:
    """The paired differences, which items only one run has, and every flipped item."""
    baseline = comparison.baseline
    header = ["Dataset", "Metric", "Model", "Baseline model", "Items", "Baseline", "This run", "Difference", "p (test)"]
    lines = ["", f"## Against baseline {baseline.run_id} (`{baseline.path}`)", ""]
    lines += ["Paired on the items both runs scored; the difference is this run minus the baseline.", ""]
    lines += [f"- Note: {note}" for note in comparison.notes] + ([""] if comparison.notes else [])
    lines += [markdown_row(header), markdown_row(["---"] * len(header))]
    for found in comparison.differences:
        cells = [found.suite, found.metric, found.model, found.baseline_model, str(found.shared)]
        cells += [found.baseline.describe(), found.current.describe(), found.difference.describe(signed=True)]
        lines.append(markdown_row([*cells, found.describe_p()]))
    for skipped in comparison.incomparable:
        cells = [skipped.suite, skipped.metric, skipped.model, skipped.baseline_model, "—", "—", "—"]
        lines.append(markdown_row([*cells, f"**not compared**: {skipped.reason}", "—"]))
    for covered in comparison.coverage:
        where = f"{covered.suite} [{covered.model}]"
        if covered.baseline_model is None:
            lines += ["", f"- {where}: the baseline has no results for this suite."]
            continue
        for count, ids, side in (
            (len(covered.only_current), covered.only_current, "only in this run"),
            (len(covered.only_baseline), covered.only_baseline, "only in the baseline"),
        ):
            if count:
                shown = ", ".join(f"`{i}`" for i in ids[:listed_ids]) + (
                    f" and {count - listed_ids} more" if count > listed_ids else ""
                )
                lines += ["", f"- {where}: {count} items {side}, not compared: {shown}"]
    lines += [
        "",
        f"### Flipped items ({len(comparison.regressions)} regressions, "
        f"{len(comparison.flips) - len(comparison.regressions)} fixes)",
        "",
    ]
    if comparison.flips:
        header = ["Dataset", "Model", "Item", "Change", "Baseline", "This run", "Metrics (baseline → this run)"]
        lines += [markdown_row(header), markdown_row(["---"] * len(header))]
        for flip in comparison.flips:
            change = "pass → miss" if flip.direction == "regression" else "miss → pass"
            metrics = ", ".join(
                f"{name} {flip.baseline_metrics.get(name, float('nan')):.3f} → {value:.3f}"
                for name, value in flip.metrics.items()
            )
            lines.append(
                markdown_row(
                    [flip.suite, flip.model, f"`{flip.id}`", change, flip.baseline_status, flip.status, metrics or "—"]
                )
            )
    return lines


def _agreement_rows(summaries: Sequence[GroupSummary]) -> list[str]:
    """`| Dataset | Model | Judge | Criterion | Items | Mean abs. difference | Spearman |` against the first judge."""
    rows = []
    for summary in summaries:
        for judge, criteria in summary.judge_agreement.items():
            for name, found in criteria.items():
                rho = "n/a" if math.isnan(found["spearman"]) else f"{found['spearman']:.2f}"
                cells = [
                    summary.suite,
                    summary.model,
                    judge,
                    name,
                    str(found["n"]),
                    f"{found['mean_abs_diff']:.2f}",
                    rho,
                ]
                rows.append(markdown_row(cells))
    if not rows:
        return []
    header = ["Dataset", "Model", "Judge", "Criterion", "Items", "Mean abs. difference", "Spearman"]
    return [
        "",
        "## Judge agreement (against the first judge)",
        "",
        markdown_row(header),
        markdown_row(["---"] * 7),
        *rows,
    ]


def _breakdown_rows(summaries: Sequence[GroupSummary], models: list[str]) -> list[str]:
    """`| Dataset | Breakdown | Metric | model... |` for tags with few values (categories, HasAns/NoAns)."""
    by_key = {(s.suite, s.model): s for s in summaries}
    rows = []
    for suite in sorted({s.suite for s in summaries}):
        first = next(s for s in summaries if s.suite == suite)
        for tag, groups in first.breakdowns.items():
            if len(groups) > MAX_BREAKDOWN_VALUES:
                continue
            for value, metrics in groups.items():
                for metric in metrics:
                    cells = []
                    for model in models:
                        found = by_key.get((suite, model))
                        estimate = found.breakdowns.get(tag, {}).get(value, {}).get(metric) if found else None
                        cells.append(estimate.describe() if estimate else "—")
                    rows.append(markdown_row([suite, f"{tag}={value}", metric, *cells]))
    if not rows:
        return []
    header = markdown_row(["Dataset", "Breakdown", "Metric", *models])
    return ["", "## Breakdowns", "", header, markdown_row(["---"] * (3 + len(models))), *rows]


def markdown_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def write_run(
    folder: Path, report: RunReport, rerun_options: Sequence[str] = (), extra: Mapping[str, str] | None = None
) -> None:
    """Write the report files, and the `extra` files by name (a submission's CSVs), into `folder`. Each goes
    to a temporary file first, and only once every one is written are they renamed into place (a rename
    needs no space), so a full disk leaves none of them rather than a report that tells part of the story.
    flipped.txt (node ids, then `rerun_options`) makes `pytest @folder/flipped.txt` re-run exactly the
    flipped items. Raises OSError when a file could not be written."""
    document = summary_document(report)
    records = [item.to_record() for item in report.items]
    files = {
        "items.jsonl": "".join(_dumps(record) + "\n" for record in records),
        "summary.md": markdown(report),
        "report.html": render_html(json.loads(_dumps(document)), records),
    }
    comparison = report.comparison
    nodeids = [flip.nodeid for flip in comparison.flips if flip.nodeid] if comparison else []
    if nodeids:
        files[FLIPPED_FILE] = "\n".join([*nodeids, *rerun_options]) + "\n"
    files.update(extra or {})
    files["summary.json"] = _dumps(document, indent=2) + "\n"
    _write_together(folder, files)


def write_failure_summary(folder: Path, report: RunReport) -> None:
    """summary.json alone, for a run whose report could not be written (its facts hold the report_error
    and exit status): the one file that says so, if the disk takes that much. Raises OSError."""
    _write_together(folder, {"summary.json": _dumps(summary_document(report), 2) + "\n"})


def _write_together(folder: Path, files: Mapping[str, str]) -> None:
    written: list[Path] = []
    try:
        for name, text in files.items():
            written.append(folder / f".{name}.partial")
            written[-1].write_text(text, "utf-8")
        for name, partial in zip(files, written, strict=True):
            partial.replace(folder / name)
    finally:
        for partial in written:
            partial.unlink(missing_ok=True)


def _dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON: NaN (a metric over no items) and infinities become null."""
    return json.dumps(_without_nan(value), ensure_ascii=False, indent=indent, allow_nan=False, default=str)


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _without_nan(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(inner) for inner in value]
    return value
