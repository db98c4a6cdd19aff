"""report.html's only script: filters the item rows (by text, status, suite and model) and sorts them by a
clicked column. The page's content security policy admits it by its hash.

Text search ignores case and Unicode normalisation. A query without diacritics also ignores the text's
("hoa lu" finds "Hoa Lư", "dong" finds "đồng"); a query with any keeps them ("lư" does not find "lu").
Sorting compares numbers as numbers and text with Vietnamese collation (`Intl.Collator("vi")`, digit runs
as numbers); empty cells stay last in either direction."""

from __future__ import annotations

PAGE_SCRIPT = """
(() => {
  "use strict";
  const table = document.querySelector("table.items");
  const rows = Array.from(table.querySelectorAll("tr.item-row"));
  const lower = (text) => text.normalize("NFC").toLowerCase();
  const plain = (text) => text.normalize("NFD").replace(/[\\u0300-\\u036f]/g, "").replace(/\\u0111/g, "d");
  const texts = rows.map((row) => lower(row.textContent));
  let plainTexts = null;
  const [text, status, suite, model] = ["text", "status", "suite", "model"].map(
    (name) => document.getElementById(`filter-${name}`));
  const count = document.getElementById("shown-count");
  function apply() {
    const needle = lower(text.value);
    const loose = plain(needle) === needle;
    if (loose && needle && plainTexts === null) plainTexts = texts.map(plain);
    const haystack = loose ? plainTexts : texts;
    const want = {status: status.value, suite: suite.value, model: model.value};
    let shown = 0;
    for (let i = 0; i < rows.length; i += 1) {
      const data = rows[i].dataset;
      const match = (!want.status || data.status === want.status)
        && (!want.suite || data.suite === want.suite)
        && (!want.model || data.model === want.model)
        && (!needle || haystack[i].includes(needle));
      if (rows[i].hidden === match) rows[i].hidden = !match;
      if (match) shown += 1;
    }
    count.textContent = `${shown} of ${rows.length} items shown`;
  }
  for (const control of [text, status, suite, model]) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  }
  const collator = new Intl.Collator("vi", {numeric: true});
  const heads = Array.from(table.tHead.rows[0].cells);
  function sortBy(head, column) {
    const ascending = head.getAttribute("aria-sort") !== "ascending";
    for (const other of heads) other.removeAttribute("aria-sort");
    head.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const numeric = head.dataset.sort === "number";
    const keys = rows.map((row, index) => {
      const shown = row.cells[column].textContent.trim();
      const key = numeric ? Number.parseFloat(shown) : shown;
      return {row, index, key, empty: numeric ? Number.isNaN(key) : key === ""};
    });
    const sign = ascending ? 1 : -1;
    keys.sort((a, b) => (a.empty - b.empty)
      || (a.empty ? 0 : sign * (numeric ? a.key - b.key : collator.compare(a.key, b.key)))
      || a.index - b.index);
    const body = table.tBodies[0];
    body.textContent = "";  // emptied at once: taking 10,000 rows out one by one from the top takes minutes
    const sorted = document.createDocumentFragment();  // one append, however many rows (no argument limit)
    keys.forEach((entry) => sorted.appendChild(entry.row));
    body.appendChild(sorted);
  }
  heads.forEach((head, column) => {
    const button = head.querySelector("button");
    if (button) button.addEventListener("click", () => sortBy(head, column));
  });
  apply();
})();
"""
