"""report.html in a real browser: renders offline, filters items, never runs their text, draws the baseline."""

from __future__ import annotations

import time

import pytest
from report_pages import (  # noqa: F401 (browser: a fixture open_report uses)
    DOCUMENT,
    GEMMA,
    HOSTILE_ID,
    HOSTILE_OUTPUT,
    ITEMS,
    QWEN,
    browser,
    item,
    open_report,
)
from support import read_run, replay_rows

from vnllmtest.report_html import render_html


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
    assert [flipped.nth(k).get_attribute("class") for k in range(3)] == ["regression", "regression", "fix"]
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


def test_charts_draw_the_baseline_beside_each_compared_estimate(open_report):
    opened = open_report(DOCUMENT, ITEMS)
    page = opened.page
    vims, vmlu = page.locator("svg.chart").all()
    marks = "g:not(.legend) > rect.baseline"  # one per entry of the comparison's metrics
    assert (vims.locator(marks).count(), vmlu.locator(marks).count()) == (2, 1)
    assert all(mark.is_visible() for mark in page.locator(f"svg.chart {marks}").all())
    baseline = vmlu.locator("g:not(.legend):has(> rect.baseline)")
    assert baseline.locator("line.whisker").count() == 3
    title = "baseline gemma3-270m accuracy: 38.9 [20.0, 60.0] on 18 shared items"
    assert baseline.locator("title").text_content() == title
    assert baseline.locator("rect").get_attribute("width") == "151.7"  # 38.9% of the 390-wide plot
    assert baseline.locator("text.baseline-value").text_content() == "38.9"
    assert [legend.text_content() for legend in page.locator("svg.chart g.legend").all()] == [
        "this runbaseline 20261120-090000 (items both runs scored)"
    ] * 2
    assert opened.quiet()
    alone = open_report({**DOCUMENT, "comparison": None}, ITEMS).page
    assert alone.locator("svg.chart rect.baseline, svg.chart g.legend").count() == 0
    assert alone.locator("svg.chart rect.bar").count() == page.locator("svg.chart rect.bar").count() == 5


CHOICES = [
    {"id": f"q-{n:02d}", "question": f"Câu {n}: Hoa Lư ở đâu?", "choices": ["A. Ninh Bình", "B. Huế"], "answer": "A"}
    for n in range(12)
]


@pytest.mark.project(
    suites={"mc": {"task": "multiple_choice", "scoring": {"mode": "generate"}}},
    records={"mc.jsonl": CHOICES},
    predictions={
        name: replay_rows({r["id"]: "A" if n < right else "B" for n, r in enumerate(CHOICES)}, model=name)
        for name, right in (("base", 9), ("ckpt", 6))
    },
)
def test_a_run_against_a_baseline_draws_it_in_its_report(project, open_report):
    assert project.runpytest("suites", "--model", "replay:base.jsonl", "--report-dir", "baseline").ret == 0
    baseline = read_run(project.path, "baseline").path
    assert project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", str(baseline)).ret == 0
    opened = open_report(read_run(project.path).path / "report.html")
    page = opened.page
    mark = page.locator("svg.chart g:not(.legend):has(> rect.baseline)")
    assert mark.count() == 1 and mark.locator("title").text_content().startswith("baseline base accuracy: 75.0 [")
    assert page.locator("svg.chart g.legend").count() == 1
    assert page.locator("table.flips tbody tr.regression").count() == 3
    page.fill("#filter-text", "hoa lu")
    assert opened.shown() == "12 of 12 items shown"
    assert opened.quiet()


def test_flipped_judged_items_take_one_line_each(open_report):
    opened = open_report(DOCUMENT, ITEMS)
    rows = opened.page.locator("table.flips tbody tr")
    heights = [rows.nth(k).bounding_box()["height"] for k in range(rows.count())]
    assert len(heights) == 3 and max(heights) - min(heights) < 1, "nine judged metrics take one line, as one does"
    judged = rows.filter(has_text="Cluster_002")
    assert "judge_score 8.000 → 3.000 (-5.000) 8 more" in judged.inner_text()
    assert judged.locator("details").get_attribute("open") is None
    assert "rouge_l" not in judged.inner_text()
    judged.get_by_text("8 more").click()
    assert "\nrouge_l 0.800 → 0.300 (-0.500)\n" in judged.inner_text()
    assert judged.bounding_box()["height"] > 5 * heights[0]
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


def test_ten_thousand_rows_render_filter_and_sort(open_report):
    items = [item("vmlu", GEMMA, f"{k:05d}", ("passed", "missed")[k % 2], f"đáp án {k}") for k in range(10_000)]
    started = time.monotonic()
    opened = open_report(DOCUMENT, items)
    assert opened.shown() == "10000 of 10000 items shown"
    opened.page.fill("#filter-text", "đáp án 999")
    assert opened.shown() == "11 of 10000 items shown"  # 999 and 9990-9999
    opened.page.fill("#filter-text", "dap an 999")
    assert opened.shown() == "11 of 10000 items shown"
    opened.page.locator("#items th", has_text="Id").locator("button").dblclick()  # sorted, then reversed
    assert opened.page.locator("tr.item-row:visible td:nth-child(3)").first.inner_text() == "09999"
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
