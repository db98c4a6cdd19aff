"""Run reports: summary.json, summary.md (one column per model) and items.jsonl in one folder per run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vnllmtest.aggregate import GroupSummary
from vnllmtest.metrics import Estimate

STATUSES = ("passed", "missed", "error")
MAX_BREAKDOWN_VALUES = 12  # tags with more values (e.g. VMLU's 58 subjects) stay in summary.json only


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


def format_estimate(found: Estimate) -> str:
    if found.n == 0 or math.isnan(found.value):
        return "n/a"
    return f"{found.value:.1f} [{found.low:.1f}, {found.high:.1f}]"


def summary_document(summaries: Sequence[GroupSummary], manifest: Mapping[str, Any], run: Mapping[str, Any]) -> dict:
    return {
        "run": dict(run),
        "gates_passed": all(g.passed for s in summaries for g in s.gates) and not run.get("collection_errors"),
        "results": [_group_json(s) for s in summaries],
        "manifest": dict(manifest),
    }


def _group_json(summary: GroupSummary) -> dict[str, Any]:
    return {
        "suite": summary.suite,
        "model": summary.model,
        "items": summary.items,
        "statuses": {status: summary.statuses.get(status, 0) for status in STATUSES},
        "failure_classes": dict(summary.failure_classes),
        "truncated": summary.truncated,
        "thinking_tokens": summary.thinking_tokens,
        "metrics": {name: asdict(found) for name, found in summary.metrics.items()},
        "breakdowns": {
            tag: {value: {m: asdict(e) for m, e in metrics.items()} for value, metrics in groups.items()}
            for tag, groups in summary.breakdowns.items()
        },
        "gates": [asdict(gate) for gate in summary.gates],
        "judge_agreement": summary.judge_agreement,
    }


def markdown(summaries: Sequence[GroupSummary], manifest: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    seen = {s.model for s in summaries}
    models = [m for m in manifest.get("models", {}) if m in seen] + sorted(seen - set(manifest.get("models", {})))
    by_key = {(s.suite, s.model): s for s in summaries}
    suites = sorted({s.suite for s in summaries})
    lines = [f"# vnllmtest run {run.get('id', '')}", ""]
    if not run.get("complete", True):
        lines += ["**Incomplete run**: interrupted or stopped early; numbers cover the items that finished.", ""]
    lines += [
        "Values are points (0-100), judge scores (`judge_*`) are on the rubric's scale (1-10); "
        "all with 95% bootstrap confidence intervals.",
        "",
    ]
    lines += [_row(["Dataset", "Metric", *models]), _row(["---"] * (2 + len(models)))]
    for suite in suites:
        metric_names = next(s.metrics for s in summaries if s.suite == suite)
        for metric in metric_names:
            cells = [format_estimate(by_key[(suite, m)].metrics[metric]) if (suite, m) in by_key else "—" for m in models]
            lines.append(_row([suite, metric, *cells]))
    lines += _breakdown_rows(summaries, models)
    lines += _agreement_rows(summaries)
    if run.get("collection_errors"):
        lines += ["", "## Not evaluated", "", "These suites could not be collected, so none of their gates passed:", ""]
        lines += [f"- `{failed['path']}`: {' '.join(failed['error'].split())}" for failed in run["collection_errors"]]
    lines += ["", "## Gates", "", _row(["Dataset", "Model", "Gate", "Value", "Result"]), _row(["---"] * 5)]
    for summary in summaries:
        for gate in summary.gates:
            verdict = "pass" if gate.passed else f"**FAIL** ({gate.reason})"
            value = "n/a" if math.isnan(gate.value) else f"{gate.value:.1f}"
            lines.append(_row([summary.suite, summary.model, gate.gate, value, verdict]))
    header = ["Dataset", "Model", "Items", *STATUSES, "Truncated prompts", "Thinking tokens", "Failure classes"]
    lines += ["", "## Items", "", _row(header), _row(["---"] * len(header))]
    for summary in summaries:
        classes = ", ".join(f"{name}: {count}" for name, count in sorted(summary.failure_classes.items())) or "—"
        counts = [str(summary.statuses.get(status, 0)) for status in STATUSES]
        extra = [str(summary.truncated), str(summary.thinking_tokens)]
        lines.append(_row([summary.suite, summary.model, str(summary.items), *counts, *extra, classes]))
    lines += ["", "## Data", ""]
    for name, suite in sorted(manifest.get("suites", {}).items()):
        lines.append(f"- `{name}`: {suite.get('data_origin', '?')}")
        lines += [f"  - note: {note}" for note in suite.get("data_notes") or []]
    return "\n".join(lines) + "\n"


def _agreement_rows(summaries: Sequence[GroupSummary]) -> list[str]:
    """`| Dataset | Model | Judge | Criterion | Items | Mean abs. difference | Spearman |` against the first judge."""
    rows = []
    for summary in summaries:
        for judge, criteria in summary.judge_agreement.items():
            for name, found in criteria.items():
                rho = "n/a" if math.isnan(found["spearman"]) else f"{found['spearman']:.2f}"
                cells = [summary.suite, summary.model, judge, name, str(found["n"]), f"{found['mean_abs_diff']:.2f}", rho]
                rows.append(_row(cells))
    if not rows:
        return []
    header = ["Dataset", "Model", "Judge", "Criterion", "Items", "Mean abs. difference", "Spearman"]
    return ["", "## Judge agreement (against the first judge)", "", _row(header), _row(["---"] * 7), *rows]


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
                        cells.append(format_estimate(estimate) if estimate else "—")
                    rows.append(_row([suite, f"{tag}={value}", metric, *cells]))
    if not rows:
        return []
    header = _row(["Dataset", "Breakdown", "Metric", *models])
    return ["", "## Breakdowns", "", header, _row(["---"] * (3 + len(models))), *rows]


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def write_run(
    folder: Path,
    summaries: Sequence[GroupSummary],
    items: Iterable[Mapping[str, Any]],
    manifest: Mapping[str, Any],
    run: Mapping[str, Any],
) -> None:
    """Write the three report files into `folder`."""
    document = summary_document(summaries, manifest, run)
    (folder / "summary.json").write_text(_dumps(document, indent=2) + "\n", "utf-8")
    (folder / "summary.md").write_text(markdown(summaries, manifest, run), "utf-8")
    with (folder / "items.jsonl").open("w", encoding="utf-8") as handle:
        for record in items:
            handle.write(_dumps(record) + "\n")


def _dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON: NaN (a metric over no items) becomes null."""
    return json.dumps(_without_nan(value), ensure_ascii=False, indent=indent, allow_nan=False, default=str)


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {key: _without_nan(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(inner) for inner in value]
    return value
