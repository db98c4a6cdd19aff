"""trend.html in Chromium: written by `vnllmtest trend` from real checkpoints' runs (tests/trend_runs.py), it
loads nothing, logs nothing, runs no script, shows one dot per point in each chart with the planted drop marked,
and keeps Vietnamese text and a hostile item id as text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_pages import browser, fonts_drawn, open_report  # noqa: F401
from trend_runs import HOSTILE_ID, MISSING_ID, tampered, trend_runs

from vnllmtest.cli import main
from vnllmtest.report_html import MONO_FONTS, SANS_FONTS
from vnllmtest.metrics import Estimate
from vnllmtest.trend import Trend, load_points
from vnllmtest.trend_chart import trend_chart


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trend_runs(tmp_path_factory.getbasetemp() / "trend-runs")


def written(tmp_path: Path, *paths: Path) -> Path:
    assert main(["trend", *map(str, paths), "--out", str(tmp_path), "--bootstrap-iterations", "200"]) == 0
    return tmp_path / "trend.html"


def chart_facts(opened) -> dict[str, list[int]]:
    """Per chart (its aria-label): dots, whiskers, drop triangles and `≠` marks."""
    return opened.page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll("svg.trend")).map((chart) => [
            chart.getAttribute("aria-label"),
            ["circle.point", "line.whisker", "path.drop", "text.incomparable"].map(
                (css) => chart.querySelectorAll(css).length)]))"""
    )


def test_the_trend_page_is_offline_escaped_and_charts_every_point(runs, tmp_path, open_report, capsys):  # noqa: F811
    paths = [runs[label] for label in ("step-1000", "step-2000", "step-3000")]
    opened = open_report(written(tmp_path, *paths))
    capsys.readouterr()
    assert opened.quiet()
    page = opened.page
    assert page.evaluate("[window.__pwned, document.scripts.length]") == [None, 0]
    assert chart_facts(opened) == {
        "mc accuracy over 3 checkpoints": [3, 3, 1, 0],
        "qa exact_match over 3 checkpoints": [3, 3, 0, 0],
        "qa f1 over 3 checkpoints": [3, 3, 0, 0],
    }
    drop_title = page.locator("svg.trend path.drop").first.locator("xpath=..").locator("title").text_content()
    assert drop_title.startswith("significant drop against point 2: -40.0 [") and "Holm p " in drop_title
    dot_title = page.locator("svg.trend circle.point").first.locator("xpath=..").locator("title").text_content()
    assert dot_title.startswith(f"1: step-1000 ({paths[0].name}): 75.0 [")
    assert "1 significant drop(s): mc accuracy at 3 vs 2." in page.locator("#drops").inner_text()
    assert "Holm–Bonferroni across 6 tests" in page.locator("#method").inner_text()
    flips = page.locator("#flips").inner_text()
    assert f"qa, pass → miss: {HOSTILE_ID}" in flips
    assert f"qa: 1 item only in point 1, not compared: {MISSING_ID}" in flips
    assert page.locator("#flips code", has_text="đoạn-11").count() == 2  # only in point 1, then only in point 3
    families = {"code": MONO_FONTS, "td:not(:has(code))": SANS_FONTS, "th": SANS_FONTS, "h2": SANS_FONTS,
                "svg text": SANS_FONTS}
    drawn = fonts_drawn(page, families)  # Vietnamese ids in code, the rest in the page's sans: never a fallback
    for selector, stack in families.items():
        assert set(drawn[selector]) == {stack.split(",")[0].strip('"')}, (selector, drawn[selector])
    drop_cell = page.locator("#metrics table.metrics span.worse")
    assert drop_cell.count() == 1 and drop_cell.inner_text().endswith("▼ drop vs 2")
    assert page.locator("#steps span.worse").inner_text() == "significant drop"


def test_a_metric_not_compared_is_marked_and_a_long_id_wraps(runs, tmp_path, open_report, capsys):  # noqa: F811
    long_id = "đ" * 5000
    renamed = {"q39": long_id}
    changed = tampered(runs["step-2000"], tmp_path / "changed", lambda r: {**r, "id": renamed.get(r["id"], r["id"])})
    summary = json.loads((changed / "summary.json").read_text("utf-8"))
    summary["metric_definitions"]["f1"] += 1
    (changed / "summary.json").write_text(json.dumps(summary), "utf-8")
    opened = open_report(written(tmp_path, runs["step-1000"], changed))
    capsys.readouterr()
    assert opened.quiet()
    assert chart_facts(opened)["qa f1 over 2 checkpoints"] == [2, 2, 0, 1]
    mark = opened.page.locator("svg.trend text.incomparable").locator("xpath=..").locator("title").text_content()
    assert mark.startswith("not compared with point 1: definition changed (point 1 v")
    assert opened.page.locator("#flips code", has_text=long_id).count() == 1
    assert opened.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_many_points_number_every_kth_on_the_x_axis(runs):
    points = load_points([runs["step-1000"]] * 60, [])
    values = [Estimate(50.0 + n % 7, 40.0, 60.0 + n % 7, 40) for n in range(60)]
    key = ("mc", "accuracy")
    trend = Trend(points, None, 0.05, {key: values}, {key: [0] * 60}, {"accuracy": [2] * 60})
    chart = trend_chart(trend, "mc", "accuracy")
    ticks = re.findall(r'<text class="tick" x="([\d.]+)" y="[\d.]+">(\d+)</text>', chart)
    assert [label for _, label in ticks] == [str(n) for n in range(1, 61, 4)]  # k = ceil(60 / 15) = 4
    assert min(float(b[0]) - float(a[0]) for a, b in zip(ticks, ticks[1:])) > 30
    assert chart.count('class="point"') == 60
