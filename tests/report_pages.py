"""report.html test pages: a summary.json document and items.jsonl records covering every section (a baseline
comparison, judged items, Vietnamese text, hostile text), and Chromium opening the rendered page (`open_report`)
with what it logged and fetched."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vnllmtest.report_html import render_html

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE_OUTPUT = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_ID = '"><svg onload=window.__pwned=3>'
GEMMA, QWEN = "gemma3-270m", "qwen3-0.6b"
PAIR = {"suite": "vmlu", "model": GEMMA, "baseline_model": GEMMA}
VIMS_PAIR = {**PAIR, "suite": "vims"}


def estimate(value: float | None, low: float | None, high: float | None) -> dict:
    return {"value": value, "low": low, "high": high, "n": 0 if value is None else 20}


def gate(suite: str, model: str, text: str, value: float | None, **verdict: Any) -> dict:
    found = {"suite": suite, "model": model, "metric": text.split()[0], "gate": text}
    return {
        "value": value,
        "passed": False,
        "reason": "",
        "skipped": False,
        **found,
        **verdict,
    }


def result(suite: str, model: str, metrics: dict, *gates: dict, breakdowns=None) -> dict:
    return {
        "suite": suite,
        "model": model,
        "items": 2,
        "statuses": {"passed": 1, "missed": 1, "error": 0},
        "failure_classes": {"wrong": 1},
        "metrics": metrics,
        "breakdowns": breakdowns or {},
        "gates": list(gates),
    }


def vmlu_breakdowns(stem: float) -> dict:
    """A 2-value tag, shown, and a 13-value tag, left to summary.json."""
    one = {"accuracy": estimate(50.0, 0.0, 100.0)}
    categories = {
        "STEM": {"accuracy": estimate(stem, 10.0, 90.0)},
        "Social": {"accuracy": estimate(40.0, 5.0, 80.0)},
    }
    return {
        "category": categories,
        "subject": {f"subject-{k:02d}": one for k in range(13)},
    }


def flip(item_id: str, direction: str, before: float, after: float) -> dict:
    statuses = {0.0: "missed", 1.0: "passed"}
    return {
        **PAIR,
        "id": item_id,
        "direction": direction,
        "baseline_status": statuses[before],
        "status": statuses[after],
        "nodeid": f"suites/vmlu.yaml::vmlu[{GEMMA}:{item_id}]",
        "metrics": {"accuracy": after},
        "baseline_metrics": {"accuracy": before},
    }


def judged_flip(item_id: str, before: float, after: float) -> dict:
    """A judged summary that passed in the baseline and not now: nine metrics, the judge's score among them."""
    names = ("rouge_1", "rouge_2", "rouge_l", "judge_faithfulness", "judge_coverage", "judge_coherence")

    def metrics(score: float) -> dict:
        return {**dict.fromkeys(names, score / 10), "judge_score": score, "judge_overall": score, "verdict": 1.0}

    return {
        **VIMS_PAIR,
        "id": item_id,
        "direction": "regression",
        "baseline_status": "passed",
        "status": "missed",
        "nodeid": f"suites/vims.yaml::vims[{GEMMA}:{item_id}]",
        "metrics": metrics(after),
        "baseline_metrics": metrics(before),
    }


def difference(pair: dict, metric: str, current: dict, baseline: dict, test: str = "permutation") -> dict:
    """A comparison's metrics entry: `current` and `baseline` on 18 shared items."""
    change = estimate(current["value"] - baseline["value"], -3.0, 3.0)
    shared = {"shared": 18, "current": current, "baseline": baseline, "difference": change}
    return {**pair, "metric": metric, **shared, "p_value": 0.5, "test": test}


COMPARISON = {
    "baseline": {"path": "reports/20261120-090000", "run_id": "20261120-090000"},
    "metrics": [
        difference(PAIR, "accuracy", estimate(33.3, 15.0, 55.0), estimate(38.9, 20.0, 60.0), "mcnemar"),
        difference(VIMS_PAIR, "rouge_l", estimate(44.2, 39.8, 48.2), estimate(41.0, 36.0, 46.0)),
        difference(VIMS_PAIR, "judge_overall", estimate(6.5, 5.9, 7.1), estimate(7.4, 6.9, 7.9)),
    ],
    "coverage": [
        {
            **PAIR,
            "shared": 18,
            "only_current": ["01-0003"],
            "only_baseline": ["01-0009", "01-0010"],
        }
    ],
    "flips": [
        flip("01-0007", "fix", 0.0, 1.0),
        flip("01-0004", "regression", 1.0, 0.0),
        judged_flip("Cluster_002", 8.0, 3.0),
    ],
}

DOCUMENT = {
    "run": {
        "id": "20261126-101500",
        "started": "2026-11-26T10:15:00+00:00",
        "finished": "2026-11-26T10:19:00+00:00",
        "complete": False,
        "exit_status": 1,
        "collection_errors": [{"path": "suites/broken.yaml", "error": "unknown metric <b>"}],
    },
    "gates_passed": False,
    "results": [
        result(
            "vmlu",
            GEMMA,
            {"accuracy": estimate(33.3, 15.0, 55.0)},
            gate("vmlu", GEMMA, "accuracy >= 25 (ci_high)", 55.0, passed=True),
            breakdowns=vmlu_breakdowns(60.0),
        ),
        result(
            "vmlu",
            QWEN,
            {"accuracy": estimate(None, None, None)},
            gate("vmlu", QWEN, "accuracy >= 25 (ci_high)", None, reason="no scored items"),
            breakdowns=vmlu_breakdowns(20.0),
        ),
        result(
            "vims",
            GEMMA,
            {
                "rouge_l": estimate(44.2, 39.8, 48.2),
                "judge_overall": estimate(6.5, 5.9, 7.1),
            },
            gate(
                "vims",
                GEMMA,
                "judge_overall >= 5",
                6.5,
                skipped=True,
                reason="no judge",
            ),
        ),
        result(
            "vims",
            QWEN,
            {
                "rouge_l": estimate(47.0, 41.0, 52.5),
                "judge_overall": estimate(7.2, 6.6, 7.8),
            },
        ),
    ],
    "manifest": {
        "models": {GEMMA: {}, QWEN: {}},
        "suites": {"vmlu": {"data_origin": "bundled sample", "data_notes": ["20 of 10,000"]}},
    },
    "comparison": COMPARISON,
}

JUDGE = {
    "judge": "judge:seallms-v3-7b",
    "scores": {"accuracy": 8, "fluency": 7},
    "overall": 7.5,
    "rationale": "Tóm tắt đúng ý chính.",
    "raw_outputs": ["{}"],
    "judge_failed": False,
}


def item(suite: str, model: str, item_id: str, status: str, output: str | None, **extra) -> dict:
    classes = {"passed": None, "missed": "wrong", "error": "model_error"}
    return {
        "suite": suite,
        "model": model,
        "id": item_id,
        "status": status,
        "failure_class": classes[status],
        "prompt": f"Câu hỏi {item_id}: thủ đô của Việt Nam là gì?",
        "references": ["Hà Nội"],
        "output": output,
        "metrics": {"accuracy": float(status == "passed")},
        "tags": {"category": "STEM"},
        **extra,
    }


def summary(model: str, item_id: str, status: str, output: str, judge: dict) -> dict:
    metrics = {"rouge_l": 0.41, "judge_overall": judge["overall"]}
    references = ["Bản tóm tắt tham chiếu."]
    return item(
        "vims",
        model,
        item_id,
        status,
        output,
        references=references,
        metrics=metrics,
        judges=[judge],
    )


ITEMS = [
    item("vmlu", GEMMA, "01-0003", "passed", "Đáp án: A. Hà Nội", answer="A"),
    item("vmlu", GEMMA, "01-0004", "missed", "Đáp án: C", answer="C"),
    item("vmlu", QWEN, "01-0003", "error", None, metrics={}, message="CUDA out of memory"),
    item("vmlu", QWEN, HOSTILE_ID, "missed", HOSTILE_OUTPUT, references=[HOSTILE_ID]),
    summary(GEMMA, "Cluster_001", "passed", "HÀ NỘI có mưa lớn.", JUDGE),
    summary(GEMMA, "Cluster_002", "missed", "Không rõ.", {**JUDGE, "overall": None}),
    summary(QWEN, "Cluster_001", "passed", "Mưa lớn ở miền Bắc.", JUDGE),
    summary(QWEN, "Cluster_002", "passed", "Bão số 3.", JUDGE),
]


@dataclass
class Opened:
    """A report page and what it did while loading and being used."""

    page: Any
    url: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def visible_rows(self) -> int:
        return self.page.locator("tr.item-row:visible").count()

    def shown(self) -> str:
        return self.page.locator("#shown-count").inner_text()

    def quiet(self) -> bool:
        """No console errors or warnings, no uncaught errors, nothing fetched."""
        noisy = [m for m in self.console if m.startswith(("error", "warning"))]
        return noisy == [] and self.errors == [] and self.requests == [self.url]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = "report.html browser tests need playwright"
    sync_api = pytest.importorskip("playwright.sync_api", reason=reason)
    if not CHROMIUM.exists():
        pytest.skip(f"report.html browser tests need Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def open_report(browser: Any, tmp_path: Path) -> Iterator[Callable[..., Opened]]:
    """Writes render_html(document, items) to tmp_path (or takes a report.html) and opens it over file://."""
    pages = []

    def opener(document: dict | Path, items: list[dict] | None = None) -> Opened:
        """Opens render_html(document, items), or the report.html at `document` when it is a path."""
        path = document if isinstance(document, Path) else tmp_path / f"report-{len(pages)}.html"
        if not isinstance(document, Path):
            path.write_text(render_html(document, items or []), "utf-8")
        page = browser.new_page()
        pages.append(page)
        opened = Opened(page, path.as_uri())
        page.on(
            "console",
            lambda message: opened.console.append(f"{message.type}: {message.text}"),
        )
        page.on("pageerror", lambda error: opened.errors.append(str(error)))
        page.on("request", lambda request: opened.requests.append(request.url))
        page.goto(opened.url)
        return opened

    yield opener
    for page in pages:
        page.close()


def fonts_drawn(page: Any, selectors: Iterable[str]) -> dict[str, dict[str, int]]:
    """For each CSS selector: the font families Chromium drew the matching elements' glyphs with, and how many
    glyphs each (asked through the DevTools protocol, so a fallback font shows up by its real name)."""
    session = page.context.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("CSS.enable")
    root = session.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    drawn: dict[str, dict[str, int]] = {}
    for selector in selectors:
        glyphs = drawn.setdefault(selector, {})
        for node in session.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"]:
            for font in session.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]:
                glyphs[font["familyName"]] = glyphs.get(font["familyName"], 0) + font["glyphCount"]
    return drawn
