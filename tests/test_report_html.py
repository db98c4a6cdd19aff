"""report.html in a real browser: renders offline, filters items, never runs their text."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


COMPARISON = {
    "baseline": {"path": "reports/20261120-090000", "run_id": "20261120-090000"},
    "metrics": [
        {
            **PAIR,
            "metric": "accuracy",
            "shared": 18,
            "current": estimate(33.3, 15.0, 55.0),
            "baseline": estimate(38.9, 20.0, 60.0),
            "difference": estimate(-5.6, -16.7, 5.6),
            "p_value": 0.5,
            "test": "mcnemar",
        }
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
    """Writes render_html(document, items) to tmp_path and opens it over file://."""
    pages = []

    def opener(document: dict, items: list[dict]) -> Opened:
        path = tmp_path / f"report-{len(pages)}.html"
        path.write_text(render_html(document, items), "utf-8")
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


def test_renders_every_section_offline(open_report):
    opened = open_report(DOCUMENT, ITEMS)
    page = opened.page
    assert "20261126-101500" in page.title()
    assert page.locator("#incomplete").is_visible()
    assert page.locator("#gates-failed").is_visible()
    assert page.locator("#gates tr.fail").count() == 1
    assert page.locator("#gates tr.skipped").inner_text().endswith("skipped no judge")
    assert page.locator("#not-evaluated").get_by_text("suites/broken.yaml").is_visible()
    metrics = page.locator("#metrics")
    for text in ("33.3 [15.0, 55.0]", "n/a", "6.5 [5.9, 7.1]", "47.0 [41.0, 52.5]"):
        assert metrics.get_by_role("cell", name=text, exact=True).is_visible()
    vims, vmlu = page.locator("svg.chart").all()
    assert vims.locator("rect.bar").count() == 4  # 2 metrics x 2 models
    assert vims.get_by_text("100", exact=True).count() == 1  # rouge_l: 0-100
    assert vims.get_by_text("10", exact=True).count() == 1  # judge_overall: 1-10
    assert vmlu.get_by_text("n/a", exact=True).count() == 1  # qwen3's accuracy
    breakdowns = page.locator("#breakdowns").inner_text()
    assert "category=STEM" in breakdowns and "subject-" not in breakdowns
    flipped = page.locator("table.flips tbody tr")
    assert [flipped.nth(k).get_attribute("class") for k in range(2)] == [
        "regression",
        "fix",
    ]
    assert "2: 01-0009, 01-0010" in page.locator("#comparison").inner_text()
    assert page.locator("tr.item-row").count() == len(ITEMS)
    assert opened.shown() == f"{len(ITEMS)} of {len(ITEMS)} items shown"
    assert opened.quiet(), (opened.console, opened.errors, opened.requests)


def test_filters_the_item_table(open_report):
    opened = open_report(DOCUMENT, ITEMS)
    page, everything = opened.page, f"{len(ITEMS)} of {len(ITEMS)} items shown"
    page.fill("#filter-text", "hà nội")  # three vmlu references, one upper-case output
    assert opened.visible_rows() == 4 and opened.shown() == f"4 of {len(ITEMS)} items shown"
    page.fill("#filter-text", "MƯA LỚN")
    assert opened.visible_rows() == 2
    page.fill("#filter-text", "cuda out of memory")  # a message, inside the row's details
    assert opened.visible_rows() == 1
    page.fill("#filter-text", "")
    assert opened.shown() == everything
    page.select_option("#filter-status", "missed")
    assert opened.visible_rows() == 3
    page.select_option("#filter-suite", "vims")
    assert opened.visible_rows() == 1
    page.select_option("#filter-status", "")
    page.select_option("#filter-model", QWEN)
    assert opened.visible_rows() == 2 and opened.shown() == f"2 of {len(ITEMS)} items shown"
    page.select_option("#filter-suite", "")
    page.select_option("#filter-model", "")
    assert opened.visible_rows() == len(ITEMS) and opened.shown() == everything
    assert opened.quiet()


def test_untrusted_text_is_shown_not_run(open_report):
    document = {
        **DOCUMENT,
        "results": [{**DOCUMENT["results"][0], "suite": HOSTILE_ID}],
    }
    items = [*ITEMS, item(HOSTILE_ID, GEMMA, "x-1", "passed", "ok")]
    opened = open_report(document, items)
    page = opened.page
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img, [onerror], [onload]").count() == 0
    assert page.locator("svg").count() == page.locator("svg.chart").count() == 1
    assert page.locator("script").count() == 1  # the page's own
    row = page.locator("tr.item-row", has_text="window.__pwned=1")
    row.locator("summary").click()
    for text in (HOSTILE_OUTPUT, HOSTILE_ID):
        assert row.locator("pre", has_text=text).first.is_visible()
    assert page.locator("#metrics td", has_text=HOSTILE_ID).is_visible()
    page.select_option("#filter-suite", HOSTILE_ID)  # the attribute survives escaping
    assert opened.visible_rows() == 1
    assert page.evaluate("window.__pwned") is None
    assert opened.quiet()


def test_ten_thousand_rows_render_and_filter(open_report):
    items = [item("vmlu", GEMMA, f"{k:05d}", ("passed", "missed")[k % 2], f"đáp án {k}") for k in range(10_000)]
    started = time.monotonic()
    opened = open_report(DOCUMENT, items)
    assert opened.shown() == "10000 of 10000 items shown"
    opened.page.fill("#filter-text", "đáp án 999")
    assert opened.shown() == "11 of 10000 items shown"  # 999 and 9990-9999
    assert time.monotonic() - started < 60
    assert opened.quiet()


@pytest.mark.parametrize(
    "document",
    [DOCUMENT, {}, {"run": {"id": "x", "complete": True}, "results": []}],
    ids=["full", "empty", "minimal"],
)
def test_self_contained_page(document):
    page = render_html(document, ITEMS if document is DOCUMENT else [])
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "http://" not in page and "https://" not in page
    if document is not DOCUMENT:
        assert '<span id="shown-count">0 of 0 items shown</span>' in page
        assert 'id="comparison"' not in page and 'id="incomplete"' not in page


def test_tolerates_missing_and_null_fields():
    document = {"results": [{"suite": "s", "model": "a", "metrics": {"m": None}, "gates": [None]}]}
    page = render_html(document, [{"id": None}, "not a record"])
    assert "1 of 1 items shown" in page and "<td>n/a</td>" in page


def test_untrusted_text_is_escaped():
    page = render_html(DOCUMENT, ITEMS)
    assert "<script>window" not in page and "<img" not in page and "<svg onload" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;svg onload=window.__pwned=3&gt;" in page
