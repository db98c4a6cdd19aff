"""report.html and Vietnamese, in Chromium: every block drawn in its declared font (no fallback, asked through the
DevTools protocol), search with and without diacritics, item columns sorted with Vietnamese collation."""

from __future__ import annotations

import unicodedata

from report_pages import (  # noqa: F401
    DOCUMENT,
    GEMMA,
    ITEMS,
    JUDGE,
    browser,
    estimate,
    fonts_drawn,
    item,
    open_report,
    result,
)

from vnllmtest.report_html import FONTS_PACKAGE, MONO_FONTS, SANS_FONTS

TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # none, huyền, sắc, hỏi, ngã, nặng
LETTERS = "".join(unicodedata.normalize("NFC", v + t) for v in "aăâeêioôơuưy" for t in TONES) + "đ"
VIETNAMESE = f"{LETTERS} {LETTERS.upper()} Người ở Hoa Lư đã ngẫm nghĩ về Thưởng thức"
NFD = unicodedata.normalize("NFD", VIETNAMESE)  # what some models write: the marks as separate code points
VI_MODEL = "mô-hình-ước-lượng"
SANS_BLOCKS = ("h1", "h2", "h3", "p", "li", "th", "td", "span", "strong", "summary", "button", "figcaption", "select")
# Every element kind that holds text, and the font stack its text must come from. A node's fonts include its
# descendants', so the sans blocks are those without monospace text inside.
BLOCKS = {
    "pre": MONO_FONTS,
    "code": MONO_FONTS,
    **{f"{kind}:not(:has(pre, code))": SANS_FONTS for kind in SANS_BLOCKS},
    "svg text": SANS_FONTS,
}


def first_family(stack: str) -> str:
    return stack.split(",")[0].strip('"')


def vietnamese_report() -> tuple[dict, list[dict]]:
    """DOCUMENT with a model whose name, results and items are Vietnamese (composed and decomposed)."""
    scored = result("vims", VI_MODEL, {"rouge_l": estimate(40.0, 10.0, 80.0)})
    document = {**DOCUMENT, "results": [*DOCUMENT["results"], scored]}
    judge = {**JUDGE, "rationale": NFD, "scores": {"chính_xác": 8}}
    extra = item("vims", VI_MODEL, "bài-ước-lượng", "passed", NFD, references=[VIETNAMESE], judges=[judge])
    return document, [*ITEMS, {**extra, "prompt": VIETNAMESE, "message": VIETNAMESE}]


def test_every_block_draws_vietnamese_in_its_declared_font(open_report):
    opened = open_report(*vietnamese_report())
    page = opened.page
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    page.click("#items button.sort >> nth=0")  # the sorted column's arrow is drawn too
    assert opened.quiet(), (opened.console, opened.errors, opened.requests)  # before CSS.enable re-reads the page
    drawn = fonts_drawn(page, BLOCKS)  # element kind: {family: glyphs}
    used = {family for glyphs in drawn.values() for family in glyphs}
    for selector, stack in BLOCKS.items():
        family = first_family(stack)
        missing = "" if family in used else f"; {family} is not installed: apt-get install {FONTS_PACKAGE}"
        assert set(drawn[selector]) <= {family}, f"<{selector}> drew glyphs with {drawn[selector]}{missing}"
    for selector in ("pre", "code", "td", "th", "svg text", "summary", "button", "select"):
        key = selector if selector in drawn else f"{selector}:not(:has(pre, code))"
        assert drawn[key], f"no <{selector}> text was drawn: the check above would prove nothing"
    assert drawn["pre"][first_family(MONO_FONTS)] > 10 * len(VIETNAMESE)


def search_items() -> list[dict]:
    places = ["Cố đô Hoa Lư ở Ninh Bình.", "Hoa Lu, viết không dấu.", "Đồng Nai", "HOA LƯ"]
    return [item("vmlu", GEMMA, f"p-{n}", "passed", text, references=[]) for n, text in enumerate(places)]


def test_search_matches_with_and_without_diacritics(open_report):
    opened = open_report(DOCUMENT, [*ITEMS, *search_items()])
    page, total = opened.page, len(ITEMS) + 4
    expected = {
        "hoa lu": 3,  # without diacritics, the text's are ignored too
        "HOA LU": 3,
        "hoa lư": 2,  # with one, they count: not the text written without
        unicodedata.normalize("NFD", "Hoa Lư"): 2,  # however the query's marks are encoded
        "dong nai": 1,  # đ ~ d
        "đồng": 1,
        "dồng": 0,
        "ha noi": 4,  # three references and an upper-case output, as "hà nội" finds
        "hà nội": 4,
        "tom tat tham chieu": 4,  # the vims references, inside the details
    }
    for query, rows in expected.items():
        page.fill("#filter-text", query)
        assert (query, opened.visible_rows()) == (query, rows)
        assert opened.shown() == f"{rows} of {total} items shown"
    page.fill("#filter-text", "hoa lu")
    page.select_option("#filter-status", "missed")
    assert opened.visible_rows() == 0
    assert opened.quiet()


def sort_items() -> list[dict]:
    """Ids that code-point order and Vietnamese collation sort differently, and judge scores as text and number."""
    scores = {"e-1": 2.0, "đ-2": 10.0, "d-10": 9.5, "d-9": None, "a-3": 7.0, "ă-5": 10.0, "b-4": None}
    items = []
    for item_id, score in scores.items():
        judges = [] if score is None else [{**JUDGE, "overall": score}]
        items.append(item("vims", GEMMA, item_id, "passed", "ok", judges=judges))
    return items


def column(opened, index: int) -> list[str]:
    script = f"Array.from(document.querySelectorAll('tr.item-row:not([hidden])'), (r) => r.cells[{index}].innerText)"
    return opened.page.evaluate(script)


def test_item_columns_sort_numbers_as_numbers_and_text_in_vietnamese_order(open_report):
    opened = open_report(DOCUMENT, sort_items())
    page = opened.page
    ids, judge = page.locator("#items th", has_text="Id"), page.locator("#items th", has_text="Judge")
    ids.locator("button").click()
    assert ids.get_attribute("aria-sort") == "ascending"
    assert column(opened, 2) == ["a-3", "ă-5", "b-4", "d-9", "d-10", "đ-2", "e-1"]
    ids.locator("button").click()
    assert column(opened, 2) == ["e-1", "đ-2", "d-10", "d-9", "b-4", "ă-5", "a-3"]
    judge.locator("button").click()
    assert ids.get_attribute("aria-sort") is None and judge.get_attribute("aria-sort") == "ascending"
    assert column(opened, 6) == ["2.00", "7.00", "9.50", "10.00", "10.00", "", ""]
    assert column(opened, 2)[3:] == ["đ-2", "ă-5", "d-9", "b-4"], "ties and empty cells keep the items' order"
    judge.locator("button").click()
    assert column(opened, 6) == ["10.00", "10.00", "9.50", "7.00", "2.00", "", ""], "empty cells stay last"
    page.fill("#filter-text", "d-")  # the filter applies to the sorted rows; "đ-2" has "d-" without its stroke
    assert column(opened, 2) == ["đ-2", "d-10", "d-9"]
    assert opened.shown() == "3 of 7 items shown"
    assert opened.quiet()
