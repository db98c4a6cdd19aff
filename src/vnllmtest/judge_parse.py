"""Reading a judge's scores from its reply: the shapes local judges write, and never a guess.

Read: JSON objects (fenced, with trailing commas, cut short, nested under a key, or lists of
{criterion, score} entries), labelled lines ("1. **Độ chính xác** (8/10):", "... khá tốt. Độ chính
xác: 6.", "Accuracy = 8"), score-first lines ("8 - Độ chính xác") and markdown tables (criteria as
rows or as columns). Rules:
- a number is a score only when a scale ("/10", "trên 10"), "điểm", punctuation, a reason ("vì ...")
  or the end of the line follows it: "Tính mạch lạc: 2 câu đầu rời rạc" holds no score; nor does a
  range ("1-10"), nor, in a reply cut by its token budget, a number the cut may have split;
- rationale text (JSON strings, "Lý do: ..." lines) is never read for scores;
- a score outside the rubric's scale, or on another scale ("8/5", "80%"), is an error, never clamped;
- one key given two different values is ambiguous (an error), unless a final marker ("điểm cuối
  cùng", "sau khi xem lại", "kết luận", "final") comes before a complete set of scores that agree:
  the scores after the last such marker win; a hedge ("7 hoặc 8") is no score;
- a final marker after the last score read, followed on its line by a number written as a score
  that none of the read scores has, is a revision the reader could not read: an error, never the
  earlier score ("Điểm: 7 ... Sau khi xem lại, tôi cho 8.").
Reading one number as a score is `judge_text`'s job, finding JSON objects and their scores `judge_json`'s.
"""

from __future__ import annotations

import re
import unicodedata

from vnllmtest.judge_json import ObjectScores, json_objects
from vnllmtest.judge_text import RATIONALE_KEYS, Entry, ReplyText, fold, label_key, words
from vnllmtest.rubrics import JudgeParseError, Judgment, Rubric

_LINE_START_ONLY = {"score", "diem", "overall"}  # common words: a label only where a line starts with them
# What may precede a line-start-only label: a sentence's end, a brace, bullets, numbering, markdown.
_LEAD = re.compile(
    r"(?:.*[.!?…;:][ \t]+)?[ \t]*\{?[ \t]*(?:>[ \t]*)*(?:[-*•+][ \t]+)?(?:#+[ \t]*)?(?:\d{1,2}[.)][ \t]*)?[*_`\"'\[]*"
)
_GLOSS = re.compile(
    r"(?:[ \t]+(?:score|diem|rating))?[*_`\"'\]]*[ \t]*(?:\((?![ \t]*\d)[^()\n]{0,40}\)[ \t]*)?[*_`\"']*[ \t]*"
)
_SEPARATOR = re.compile(
    r"(?:[:：=|→]|=>|->|[-–—](?=[ \t])|(?:la|dat|duoc|is)(?![^\W_]))[ \t]*"
    r"(?:(?:la|dat|duoc|o muc|diem)[ \t]+){0,2}[*_`\"']*[ \t]*"
)
_BACK_PREFIX = re.compile(r"[ \t]*(?:[-*•+>][ \t]+)?[*_`\"']*(?=\d)")
_BACK_SEPARATOR = re.compile(r"[ \t]*[-–—:=][ \t]*[*_`\"'\[]*")
_MARKER = re.compile(
    r"(?<![^\W_])(?:(?:diem|ket qua|danh gia|cham|quyet dinh)[ \t]+cuoi(?:[ \t]+cung)?|cuoi cung[ \t,]+(?:toi|minh)"
    r"[ \t]+(?:cham|cho|chon)|sau khi (?:xem|xet|can nhac|doc)(?: ky)? lai|xem xet lai|danh gia lai|cham lai|"
    r"dieu chinh lai|sua lai|ket luan|tom lai|tong ket|final|finally|revised|after review|on reflection|"
    r"upon reflection)(?![^\W_])"
)
_RATIONALE = "|".join(sorted(RATIONALE_KEYS, key=len, reverse=True))
_RATIONALE_LINE = re.compile(rf"^[ \t>*\-•#\"'`_]*(?:{_RATIONALE})[\"'*_` \t]*[:：]", re.M)
_RATIONALE_STRING = re.compile(rf"(?<![^\W_])(?:{_RATIONALE})[\"']?[ \t]*[:：][ \t]*(\"[^\"\n]*\"?)")
_TABLE_SEPARATOR = re.compile(r"\s*:?-{2,}:?\s*")


def parse_judgment(text: str, rubric: Rubric, *, cut: bool = False) -> Judgment:
    """Every score the rubric asks for, from a judge reply; JudgeParseError when one is missing,
    out of range or ambiguous. `cut`: the reply was cut by its token budget."""
    reader = _Reader(unicodedata.normalize("NFC", text), rubric, cut)
    entries = reader.entries()
    revision = reader.unread_revision(entries)
    if revision is not None:
        raise JudgeParseError(f"a revision after the last score read could not be read: {revision!r}")
    chosen = _decide(entries, reader.markers(), rubric)
    scores = {c.name: chosen[c.name] for c in rubric.scored}
    holistic = scores[rubric.holistic.name] if rubric.holistic else None
    return Judgment(scores, holistic, rubric.overall(scores), reader.rationale or _prose(text))


class _Reader(ReplyText):
    """Finds every score in a reply, with its position; JSON, tables and rationales are then masked
    so that the line scan never reads them again."""

    def __init__(self, text: str, rubric: Rubric, cut: bool):
        super().__init__(text, rubric, cut)
        self.masked = list(self.view)  # `view` becomes the masked text once masking is done
        self.rationale = ""
        self.found: list[Entry] = []

    def entries(self) -> list[Entry]:
        self._json()
        self._tables()
        masked = "".join(self.masked)
        for match in _RATIONALE_STRING.finditer(masked):
            self._mask(*match.span(1))
        for match in _RATIONALE_LINE.finditer(masked):
            self._mask(match.end(), _line_end(masked, match.end()))
        self.view = "".join(self.masked)
        self._lines()
        return sorted(self.found, key=lambda entry: entry.pos)

    def markers(self) -> list[int]:
        return [match.start() for match in _MARKER.finditer(self.view)]

    def unread_revision(self, entries: list[Entry]) -> str | None:
        """The line from a final marker on, when it follows every score read and gives a number shaped
        like a score that none of them has ("Điểm: 7 ... Sau khi xem lại, tôi cho 8.", "Kết luận: 60/100"):
        the earlier score is not the verdict. Counts ("có 3 ý", "ngày 15.") and scores already read do not."""
        last = max((max(entry.pos, entry.end) for entry in entries), default=-1)
        given = {entry.value for entry in entries}
        for match in _MARKER.finditer(self.view, last + 1):
            line_end = _line_end(self.view, match.end())
            if any(value not in given for value in self.written_scores(match.end(), line_end)):
                return " ".join(self.text[match.start() : line_end].split())
        return None

    def _mask(self, start: int, end: int) -> None:
        for index in range(start, end):
            if self.masked[index] != "\n":
                self.masked[index] = " "

    def _add(self, pos: int, key: str, value: float, backward: bool = False, end: int = -1) -> None:
        self.found.append(Entry(pos, key, value, backward, end))

    def _json(self) -> None:
        for found in json_objects(self.text):
            scores = ObjectScores(self, found)
            self.found += scores.entries
            if scores.entries and scores.rationale is not None:
                self.rationale = scores.rationale  # only an object with scores gives the rationale
            self._mask(found.start, found.end)

    # -- markdown tables -----------------------------------------------------------------------

    def _tables(self) -> None:
        rows: list[tuple[int, list[str]]] = []
        offset = 0
        for line in "".join(self.masked).split("\n") + [""]:
            stripped = line.strip()
            if stripped.startswith("|") and stripped.count("|") >= 2:
                cells = [cell.strip() for cell in self.text[offset : offset + len(line)].strip().strip("|").split("|")]
                if self.cut and offset + len(line) >= len(self.text) and not stripped.endswith("|"):
                    cells = []  # the budget cut this row, maybe inside a number
                rows.append((offset, cells))
            elif rows:
                self._table(rows)
                self._mask(rows[0][0], min(offset, len(self.masked)))
                rows = []
            offset += len(line) + 1

    def _table(self, rows: list[tuple[int, list[str]]]) -> None:
        rows = [(pos, cells) for pos, cells in rows if not all(_TABLE_SEPARATOR.fullmatch(c) for c in cells)]
        if not rows:
            return
        labels = [[label_key(cell, self.keys) if cell else None for cell in cells] for _, cells in rows]
        if any(any(row) for row in labels[1:]) or len(rows) == 1:  # one criterion a row
            header = [words(cell) for cell in rows[0][1]]
            score_column = next((i for i, cell in enumerate(header) if cell.split(" ")[0] in ("diem", "score")), None)
            for (pos, cells), row in zip(rows, labels):
                column = next((i for i, name in enumerate(row) if name), None)
                if column is None:
                    continue
                target = score_column if score_column not in (None, column) else column + 1
                if target < len(cells):
                    self._table_cell(pos, row[column], cells[target])
        else:  # criteria as the header's columns, a row of scores below
            for pos, cells in rows[1:]:
                for name, cell in zip(labels[0], cells):
                    if name:
                        self._table_cell(pos, name, cell)

    def _table_cell(self, pos: int, key: str, cell: str) -> None:
        read = self.score_in(cell, key)
        if read is not None and not re.search(r"[^\W_]", fold(cell[read[1]:]).split("(")[0]):
            self._add(pos, key, read[0])

    # -- labelled lines ------------------------------------------------------------------------

    def _lines(self) -> None:
        masked = self.view
        for match in self.keys.pattern.finditer(masked):
            line_start = masked.rfind("\n", 0, match.start()) + 1
            alias = " ".join(match.group().split())
            if alias in _LINE_START_ONLY and not _LEAD.fullmatch(masked, line_start, match.start()):
                continue
            key = self.keys.exact[alias]
            read = self._forward(match.end(), key)
            if read is not None:
                self._add(match.start(), key, read[0], end=read[1])
                continue
            lead = _BACK_PREFIX.match(masked, line_start, match.start())
            back = self.score_at(lead.end(), key, match.start()) if lead else None
            if back is not None and _BACK_SEPARATOR.fullmatch(masked, back[1], match.start()):
                self._add(lead.end(), key, back[0], backward=True, end=match.end())

    def _forward(self, pos: int, key: str) -> tuple[float, int] | None:
        """The score after a label: `: 8`, ` (8/10)`, ` = 8 điểm`, `| 8 |`, ` đạt 8/10`, or alone on the next line."""
        masked = self.view
        pos = _GLOSS.match(masked, pos).end()
        if masked.startswith("(", pos):
            read = self.score_at(pos + 1, key)
            return read if read is not None and masked.startswith(")", _spaces(masked, read[1])) else None
        separator = _SEPARATOR.match(masked, pos)
        start = separator.end() if separator else pos
        read = self.score_at(start, key)
        if read is not None:  # without a separator only with the scale written: "Độ chính xác 8/10"
            scaled = re.match(r"[^/\n]*/|\s+(?:tren|out of)", masked[start : read[1]])
            return read if separator or scaled else None
        line_end = _line_end(masked, start)
        if line_end == len(masked) or masked[start:line_end].strip(" \t*_`\"'#"):
            return None
        next_line = _line_end(masked, line_end + 1)
        lead = _BACK_PREFIX.match(masked, line_end + 1, next_line)
        read = self.score_at(lead.end(), key, next_line) if lead else None
        alone = read is not None and not masked[read[1] : next_line].strip(" \t.*")
        return read if alone else None


def _decide(entries: list[Entry], markers: list[int], rubric: Rubric) -> dict[str, float]:
    """One value per score: all readings agree, or the complete set after the last final marker wins."""
    backward = [entry for entry in entries if entry.backward]
    if len(backward) >= 2 and [e.value for e in backward] == list(range(1, len(backward) + 1)):
        entries = [entry for entry in entries if not entry.backward]  # "1 - ..., 2 - ...": a numbered list
    conflict = _conflict(entries)
    if conflict is not None:
        marker = next((m for m in reversed(markers) if any(e.pos >= m for e in entries)), None)
        tail = [entry for entry in entries if marker is not None and entry.pos >= marker]
        if marker is None or _conflict(tail) is not None or {e.key for e in tail} != {c.name for c in rubric.scored}:
            key, values = conflict
            raise JudgeParseError(
                f"ambiguous: the reply gives {key} as {' and as '.join(f'{v:g}' for v in values)}, without a final "
                "marker (điểm cuối cùng, sau khi xem lại, kết luận, final) before one complete set of scores"
            )
        entries = tail
    chosen = {entry.key: entry.value for entry in entries}
    missing = [c.name for c in rubric.scored if c.name not in chosen]
    if missing:
        raise JudgeParseError(f"no score for {', '.join(missing)} in the judge's reply")
    return chosen


def _conflict(entries: list[Entry]) -> tuple[str, list[float]] | None:
    seen: dict[str, list[float]] = {}
    for entry in entries:
        values = seen.setdefault(entry.key, [])
        if entry.value not in values:
            values.append(entry.value)
    return next(((key, values) for key, values in seen.items() if len(values) > 1), None)


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end


def _spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _prose(text: str, limit: int = 1000) -> str:
    """The reply without JSON or code fences, as the rationale when the JSON has none."""
    prose = " ".join(re.sub(r"```.*?```|\{.*?\}", " ", text, flags=re.DOTALL).split())
    return prose[:limit] if re.search(r"[^\W\d_]", prose) else ""
