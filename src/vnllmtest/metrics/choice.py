"""Read the option label a model chose from its free-text answer.

A reply is read as *claims*, each naming one or more labels as the answer, at four levels:

- final: after a final-answer marker ("vậy", "cuối cùng", "tóm lại", "=>", "so", "therefore"), a
  choosing verb ("chọn", "choose") or a correctness word ("đáp án đúng là", "the correct answer");
- cued: after an answer cue ("Đáp án: C", "câu trả lời là", "tôi nghĩ là", "answer:") or before a
  verdict ("C đúng", "B is correct");
- start: a label opening the reply ("B. ...", "(A)", "C hoặc D") that does not open a list of options;
- marked: a label written "(X)" or "**X**" anywhere.

A negated label ("D sai", "không chọn A", "loại A") is never a claim, and nor are labels in the
option text quoted after a label ("D. Cả A và B"). An option noun naming a label that its option text
follows ("phương án A (Hà Nội) ...", "Lựa chọn A: 5") refers to that option and claims it only when
affirmed ("phương án B (Huế) đúng") or when the reply holds no other claim. The last final claim wins, unless a later cued
claim names another label; without a final claim the highest level present decides. A claim naming
several labels ("C hoặc D") and cued claims that disagree are *ambiguous*. Outside cues only a
label in the caller's case standing alone counts ("A" in "An Giang" or "Đ" never does); a label in
the other case counts after a cue, before punctuation or the end, or as the whole reply ("c").
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class ChoiceReading:
    """The label a reply chose, or None; `ambiguous`: it asserted two or more different labels
    without a final-answer marker deciding between them (then `label` is None)."""

    label: str | None
    ambiguous: bool = False


_MARKED, _START, _CUED, _FINAL = range(4)  # claim levels, weakest first
_MOST = 16  # at most this many filler words between a cue and its label, or labels joined in one claim

# Not preceded / followed by a letter or digit (Unicode-aware; "_" counts as a boundary).
_B = r"(?<![^\W_])"
_E = r"(?![^\W_])"


def _alt(phrases: Sequence[str]) -> str:
    """Alternation of NFC phrases, longest first; a space matches any run of whitespace."""
    nfc = sorted({unicodedata.normalize("NFC", p) for p in phrases}, key=len, reverse=True)
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in nfc)


def _words(*phrases: str) -> str:
    return rf"{_B}(?:{_alt(phrases)}){_E}"


# What may follow a label (or a verdict word) that ends a claim: punctuation, the end, "vì ...".
_END_WORDS = _words("vì", "do", "bởi", "because", "since", "too", "nhé", "ạ")
_END = rf"(?=\s*(?:\Z|[.,;:!?)\]*\"'”’\n(\-–—])|\s+{_END_WORDS})"
_NOUN = _words(
    "đáp án", "phương án", "câu trả lời", "trả lời", "lựa chọn", "chọn lựa", "kết quả", "answer", "option", "choice"
)  # fmt: skip
# Nouns for an option rather than the answer: "phương án A (x)" may merely refer to option A.
_OPTION_NOUN = re.compile(_words("phương án", "lựa chọn", "chọn lựa", "option", "choice"), re.IGNORECASE)
# Option text after a label: "(Hà Nội)" or ": 5" on the same line.
_OPTION_TEXT = re.compile(r"[^\S\n]*(?:(?P<paren>\([^()\n]*[^\W_][^()\n]*\))|:[^\S\n]*[^\s*])")
_VERB = r"(?<!lựa )" + _words(
    "chọn", "chốt", "khoanh", "choose", "chose", "pick", "select", "go with", "going with", "opt for"
)  # fmt: skip
_THINK = r"(?<!suy )" + _words(
    "nghĩ", "cho rằng", "tin rằng", "tin là", "nghiêng về", "có lẽ", "mà là", "think", "believe", "guess",
    "i'd say", "i would say",
)  # fmt: skip
_MARKER = (
    r"(?:=>|⇒|→|->|(?<!tuy )(?<!dù )(?<!nếu )(?<!dẫu )" + _words("vậy") + r"(?! mà| à| sao)|"
    + _words("so") + r"(?! sánh| với)|"
    + _words("do đó", "vì thế", "cho nên", "suy ra", "tóm lại", "kết luận", "cuối cùng", "rốt cuộc",
             "in conclusion", "therefore", "thus", "hence", "overall") + ")"
)  # fmt: skip
_FINAL_WORDS = (
    "đúng", "chính xác", "cuối cùng", "đúng nhất", "chính xác nhất", "hợp lý nhất", "phù hợp nhất",
    "tốt nhất", "final", "correct", "right", "best",
)  # fmt: skip
_FILLERS = _words(
    *_FINAL_WORDS, "là", "chính là", "sẽ là", "nên là", "rằng", "thì", "nhất", "được chọn", "của tôi",
    "của em", "của mình", "is", "would be", "will be", "it's", "it is", "the", "my", "câu", "ý", "đáp án",
    "phương án", "lựa chọn", "option", "answer", "choice", "có lẽ là", "chắc là", "hẳn là", "rõ ràng là",
    "chắc chắn là", "probably", "likely", "most likely", "clearly", "definitely",
)  # fmt: skip
_FINAL_GAP = re.compile(_words(*_FINAL_WORDS), re.IGNORECASE)
# Between a cue and its label: separators and fillers on one line; a line break only after a colon
# ("Đáp án:\n**B**") or, for an answer noun, as a heading ("### Đáp án\n\nA").
_INLINE_GAP = rf"(?:[^\S\n]|[:=,\-–—(\[*\"'“‘«`#>]|{_FILLERS})"
_NEXT_LINES = r"[^\S\n]*\**[^\S\n]*\n[\s*#>\-–—(\[\"'“‘«`]*"
_GAP = (  # used only after a cue pattern with a group named "noun"
    rf"(?:{_INLINE_GAP}{{0,{_MOST}}}:{_NEXT_LINES}|(?(noun)[^\S\n*#]*{_NEXT_LINES}|(?!))|{_INLINE_GAP}{{0,{_MOST}}})"
)
_JOINS = _words("hoặc", "hay", "và", "or", "and")
_SEP = (  # between labels named together: "C hoặc D", "A, B và câu C"
    rf"(?:\s*[,/&]\s*(?:{_JOINS}\s+)?|\s+{_JOINS}\s+)(?:là\s+)?(?:{_words('đáp án', 'phương án', 'câu', 'option')}\s+)?"
)


def _negation_after(gap: str) -> re.Pattern[str]:
    """A verdict against the label(s) just read ("D sai", "A: ❌", "B is wrong"), after `gap`."""
    lead = _words(
        "là", "thì", "đều", "cũng", "hoàn toàn", "chắc chắn", "rõ ràng", "is", "are", "was", "both", "all", "also"
    )  # fmt: skip
    verdict = _words(
        "sai", "không", "không đúng", "không chính xác", "không hợp lý", "không phù hợp", "không phải",
        "không phải là đáp án", "không phải đáp án", "không thể đúng", "chưa đúng", "chưa chính xác",
        "chưa đủ", "bị loại", "loại", "wrong", "incorrect", "false", "not correct", "not right", "not true",
        "not the answer", "not the correct answer", "isn't", "isn't correct", "excluded", "ruled out",
    )  # fmt: skip
    return re.compile(rf"{gap}(?:{lead}\s+)*(?:(?:{verdict}){_END}|[❌✗✘×])", re.IGNORECASE)


_PRED_GAP = r"[\s:\-–—)*\].(→=>]*"
_NEGATED_AFTER = _negation_after(_PRED_GAP)
# After a cued answer "X. Sai, vì ..." more likely quotes the option's text than judges it.
_NEGATED_RIGHT_AFTER = _negation_after(r"(?:[^\S\n]|[)*\](])*")
_AFFIRMATIONS = _words(
    "đúng", "chính xác", "hợp lý", "phù hợp", "đúng đắn", "đáp án", "đáp án đúng", "đáp án chính xác",
    "câu trả lời", "câu trả lời đúng", "phương án đúng", "lựa chọn đúng", "correct", "right", "true",
    "the answer", "the correct answer", "the right answer", "the correct option", "the right option",
)  # fmt: skip
_AFFIRMED_AFTER = re.compile(  # "C đúng", "B là đáp án đúng nhất", "B mới đúng", "D is correct", "B: ✅"
    rf"{_PRED_GAP}(?:{_words('là', 'thì', 'đều', 'mới', 'mới là', 'is', 'are', 'was', 'both', 'all')}\s+)?"
    rf"(?:(?:{_AFFIRMATIONS})(?:\s+nhất)?{_END}|[✅✓✔☑])",
    re.IGNORECASE,
)
_AUX = _words(
    "tôi", "mình", "em", "ta", "chúng tôi", "bạn", "i", "we", "you", "sẽ", "đã", "có thể", "thể", "nên", "phải",
    "hề", "được", "đang", "muốn", "là", "hãy", "will", "would", "should", "could", "do", "does", "did",
    "the", "đáp án", "phương án", "câu", "option", "answer", "nghĩ", "think", "cho rằng", "tin",
)  # fmt: skip
_NEGATIONS = (
    "không", "chẳng", "chả", "chưa", "đừng", "never", "not", "don't", "won't", "wouldn't", "loại",
    "loại bỏ", "loại trừ", "ngoại trừ", "trừ", "thay vì", "chứ", "rather than", "instead of", "eliminate",
    "exclude", "rule out", "nếu", "giả sử", "if", "định", "tưởng", "ban đầu", "lúc đầu", "initially",
    "at first", "nhầm", "nhầm lẫn",
)  # fmt: skip
# Words before an answer noun that make it a reference, not an answer ("xét đáp án A", "các phương án").
_REFERENCES = (
    "xét", "về", "với", "giữa", "các", "những", "từng", "mỗi", "mọi", "consider", "between", "each", "every", "all",
    "other",
)  # fmt: skip
_NEGATED_BEFORE = re.compile(rf"(?:{_words(*_NEGATIONS)})(?:\s+{_AUX})*\s*\Z", re.IGNORECASE)
_REFERENCE_BEFORE = re.compile(rf"(?:{_words(*_NEGATIONS, *_REFERENCES)})(?:\s+{_AUX})*\s*\Z", re.IGNORECASE)
_MARKERS = re.compile(_MARKER, re.IGNORECASE)
_ENDS = re.compile(_END, re.IGNORECASE)
_SPACES = re.compile(r"[^\S\n]+")
_SCOPE_LEAD = re.compile(r"[\s:*#>\-–—,]*")
_SENTENCE_END = re.compile(r"[.!?\n]")
_QUOTE_OPENS = re.compile(r"[ \t*]*[.):\-–—]")
# A verdict closing an option's line: "A. Hà Nội → Sai", "B. Huế (đúng)", "C. Đà Nẵng: ✓".
_LINE_VERDICT = re.compile(
    rf"(?:→|=>|->|[-–—:(])[^\S\n]*(?:(?P<yes>{_words('đúng', 'chính xác', 'correct', 'right', 'true')}|[✅✓✔☑])"
    rf"|{_words('sai', 'không đúng', 'incorrect', 'wrong', 'false')}|[❌✗✘×])(?:[^\S\n]|[).!*])*$",
    re.IGNORECASE | re.MULTILINE,
)
_LOOKBACK = 60  # characters before a claim searched for a negation
_MARKER_REACH = 200  # a final-answer marker covers at most this many characters of its sentence


@dataclass(frozen=True)
class _Patterns:
    cue: re.Pattern[str]
    labelled: re.Pattern[str]  # labels in the caller's case, with what may join them
    start: re.Pattern[str]
    line_item: re.Pattern[str]
    marked: re.Pattern[str]
    whole: re.Pattern[str]
    any_case: re.Pattern[str]


@lru_cache(maxsize=64)
def _patterns(keys: tuple[str, ...]) -> _Patterns:
    """Compile the patterns for the given NFC labels."""
    labels = _alt(keys)
    exact = rf"{_B}(?-i:{labels}){_E}"
    either = rf"{_B}(?:(?-i:{labels})|(?:{labels}){_END}){_E}"
    group = rf"(?P<group>{exact}(?:{_SEP}{exact}){{0,{_MOST}}})"
    opener = r"[\s(\[*\"'“#>\-•]*"

    def compile_(pattern: str, flags: int = 0) -> re.Pattern[str]:
        return re.compile(pattern, re.IGNORECASE | flags)

    return _Patterns(
        cue=compile_(
            rf"(?P<pre>{_words('final', 'correct', 'right', 'best')}\s+)?"
            rf"(?:(?P<noun>{_NOUN})|(?P<verb>{_VERB})|(?P<think>{_THINK})|(?P<mark>{_MARKER}))"
            rf"(?P<gap>{_GAP})(?P<group>{either}(?:{_SEP}{either}){{0,{_MOST}}})"
        ),
        labelled=compile_(group),
        start=compile_(rf"\A{opener}{group}"),
        line_item=compile_(
            rf"^[ \t>*\-•#]*[(\[]?(?:\*\*)?(?P<label>{exact})(?:\*\*)?(?:[.):\]]|[ \t]*$)", re.MULTILINE
        ),
        marked=compile_(rf"[(\[](?P<a>{exact})[)\]]|\*\*(?P<b>{exact})\*\*"),
        whole=compile_(rf"\A{opener}(?P<label>{labels})[\s.):\]*\"'”’!?]*\Z"),
        any_case=compile_(either),
    )


@dataclass(frozen=True)
class _Claim:
    pos: int
    labels: frozenset[str]
    level: int


class _Reader:
    """One reply's claims, collected by the rules in the module docstring."""

    def __init__(self, text: str, table: dict[str, str]) -> None:
        self.text, self.table = text, table
        self.patterns = _patterns(tuple(sorted(table)))
        self.claims: list[_Claim] = []
        self.quoted: list[tuple[int, int]] = []  # option text quoted after a label: no weak claims
        self.references: list[tuple[int, str]] = []  # "phương án A (x)": claims only if nothing else is

    def resolve(self, matched: str) -> str | None:
        """The caller's label that `matched` spells, in its case or another."""
        if matched in self.table:
            return self.table[matched]
        return next(
            (label for key, label in self.table.items() if re.fullmatch(_alt((key,)), matched, re.IGNORECASE)),
            None,
        )

    def exact_case(self, group: str) -> bool:
        return all(m.group() in self.table for m in self.patterns.any_case.finditer(group))

    def labels_in(self, group: str) -> frozenset[str]:
        found = (self.resolve(m.group()) for m in self.patterns.any_case.finditer(group))
        return frozenset(label for label in found if label is not None)

    def negated(
        self, start: int, end: int, before: re.Pattern[str] = _NEGATED_BEFORE, after: re.Pattern[str] = _NEGATED_AFTER
    ) -> bool:
        """Whether a negation on the same line before `start`, or a verdict after `end`, rejects the label."""
        window = max(start - _LOOKBACK, self.text.rfind("\n", 0, start) + 1)
        return bool(before.search(self.text, window, start) or after.match(self.text, end))

    def affirmed(self, end: int) -> bool:
        return bool(_AFFIRMED_AFTER.match(self.text, end))

    def ends_claim(self, end: int) -> bool:
        return bool(_ENDS.match(self.text, end)) or self.affirmed(end)

    def quote_after(self, end: int) -> None:
        """The rest of the line after "X." / "X)" / "X:" quotes that option's text."""
        if _QUOTE_OPENS.match(self.text, end):
            line_end = self.text.find("\n", end)
            self.quoted.append((end, len(self.text) if line_end < 0 else line_end))

    def list_follows(self, end: int) -> bool:
        """Whether the line after the one holding `end` is another option ("B. ...")."""
        line_end = self.text.find("\n", end)
        return line_end >= 0 and bool(self.patterns.line_item.match(self.text, line_end + 1))

    def in_quote(self, pos: int) -> bool:
        """Whether `pos` lies in quoted option text (spans never cross a line, so the last one
        starting at or before `pos` decides)."""
        index = bisect_right(self.quoted, (pos, len(self.text)))
        return index > 0 and pos < self.quoted[index - 1][1]

    def add(self, pos: int, group: str, level: int) -> None:
        labels = self.labels_in(group)
        if labels:
            self.claims.append(_Claim(pos, labels, level))

    def collect(self) -> None:
        markers = [m.end() for m in _MARKERS.finditer(self.text)]
        verdicts = self.read_options()
        weak = self.read_cues(markers)  # claims skipped where they lie in quoted option text
        weak += [(pos, label, _CUED) for pos, (correct, label) in verdicts.items() if correct]
        for m in self.patterns.labelled.finditer(self.text):
            if m.start() not in verdicts and self.affirmed(m.end()) and not self.negated(m.start(), m.end()):
                weak.append((m.start(), m.group("group"), _FINAL if self.in_scope(markers, m.start()) else _CUED))
        for m in self.patterns.marked.finditer(self.text):
            if not self.negated(m.start(), m.end()):
                weak.append((m.start(), m.group("a") or m.group("b"), _MARKED))
        self.quoted.sort()
        for pos, group, level in weak:
            if not self.in_quote(pos):
                self.add(pos, group, level)
        if not self.claims:  # a reference to an option is the reply's only cue: read it as the answer
            for pos, group in self.references:
                if not self.in_quote(pos):
                    self.add(pos, group, _CUED)

    def read_options(self) -> dict[int, tuple[bool, str]]:
        """Lines that start with an option ("B. ...") quote it; the reply's opening label is a
        claim unless it opens such a list. Returns the verdicts closing option lines ("A. x → Sai"):
        label position -> (whether it says "correct", label)."""
        text, patterns = self.text, self.patterns
        items, verdicts = [], {}
        for item in patterns.line_item.finditer(text):
            line_end = text.find("\n", item.end())
            verdict = _LINE_VERDICT.search(text, item.end("label"), len(text) if line_end < 0 else line_end)
            if verdict:
                verdicts[item.start("label")] = (bool(verdict.group("yes")), item.group("label"))
            if verdict.group("yes") if verdict else not _NEGATED_AFTER.match(text, item.end("label")):
                items.append(item)
            self.quote_after(item.end("label"))
        start = patterns.start.match(text)
        if start and not self.negated(start.start("group"), start.end()) and self.ends_claim(start.end()):
            opens_list = any(m.start() == 0 for m in items) and len({m.group("label") for m in items}) > 1
            if not opens_list:
                self.add(0, start.group("group"), _START)
                self.quote_after(start.end())
        return verdicts

    def read_cues(self, markers: list[int]) -> list[tuple[int, str, int]]:
        """Claim the labels cues name; returns the weak ones ("Đáp án C" with nothing between)."""
        text, weak, search_from = self.text, [], 0
        while m := self.patterns.cue.search(text, search_from):
            begin, end, gap = m.start(), m.end(), m.group("gap")
            bare = not (m.group("verb") or re.search(r"[:=]|[^\W\d_]", gap))
            before = _REFERENCE_BEFORE if m.group("noun") else _NEGATED_BEFORE
            rejected = self.negated(begin, end, before, _NEGATED_AFTER if bare else _NEGATED_RIGHT_AFTER)
            rejected = rejected or ("\n" in gap and self.list_follows(end))  # "Đáp án\nA. x\nB. y" lists options
            # "vậy a", "mà là a": after a bare marker or opinion only the caller's case is a label
            rejected = rejected or (bare and not m.group("noun") and not self.exact_case(m.group("group")))
            if rejected or (bare and not self.ends_claim(end)):
                search_from = begin + 1  # a cue inside this one's gap may still stand
                continue
            search_from = end
            final = bool(m.group("verb") or m.group("mark") or m.group("pre") or _FINAL_GAP.search(gap))
            final = final or self.in_scope(markers, begin)
            if bare and not final and self.refers_to_option(m):
                self.references.append((begin, m.group("group")))
            elif bare and not final:
                weak.append((begin, m.group("group"), _CUED))
            else:
                self.add(begin, m.group("group"), _FINAL if final else _CUED)
                self.quote_after(end)
        return weak

    def refers_to_option(self, m: re.Match[str]) -> bool:
        """Whether an option noun and its label are followed by that option's text and not affirmed:
        "Phương án A (Hà Nội) là thủ đô", "Lựa chọn A: 5", unlike "phương án B (Huế) đúng"."""
        if not (m.group("noun") and _OPTION_NOUN.fullmatch(m.group("noun"))) or self.affirmed(m.end()):
            return False
        option_text = _OPTION_TEXT.match(self.text, m.end())
        return bool(option_text) and not (option_text.group("paren") and self.affirmed(option_text.end()))

    def in_scope(self, markers: list[int], pos: int) -> bool:
        """Whether a final-answer marker earlier in the same sentence covers position `pos`
        (`markers`: where each marker ends, ascending)."""
        for marker_end in markers[bisect_left(markers, pos - _MARKER_REACH) : bisect_right(markers, pos)]:
            lead = _SCOPE_LEAD.match(self.text, marker_end).end()
            if not _SENTENCE_END.search(self.text, min(lead, pos), pos):
                return True
        return False

    def decide(self) -> ChoiceReading:
        claims = sorted(self.claims, key=lambda c: c.pos)
        finals = [c for c in claims if c.level == _FINAL]
        if finals:
            last = finals[-1]
            later = frozenset().union(*(c.labels for c in claims if c.level == _CUED and c.pos > last.pos))
            if len(last.labels) > 1 or later - last.labels:
                return ChoiceReading(None, ambiguous=True)
            return ChoiceReading(next(iter(last.labels)))
        for level in (_CUED, _START, _MARKED):
            found = [c for c in claims if c.level == level]
            named = frozenset().union(*(c.labels for c in found))
            if len(named) == 1:
                return ChoiceReading(next(iter(named)))
            if named:
                hedged = level == _CUED or any(len(c.labels) > 1 for c in found)
                return ChoiceReading(None, ambiguous=hedged)
        return ChoiceReading(None)


def read_choice(text: str, labels: Sequence[str]) -> ChoiceReading:
    """Read which of `labels` (as the caller spells them, any count) the reply `text` chose."""
    table = {_SPACES.sub(" ", unicodedata.normalize("NFC", label)): label for label in labels if label.strip()}
    if not table:
        return ChoiceReading(None)
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", text))
    reader = _Reader(text, table)
    whole = reader.patterns.whole.match(text)
    if whole:
        return ChoiceReading(reader.resolve(whole.group("label")))
    reader.collect()
    return reader.decide()


def extract_choice(text: str, labels: Sequence[str]) -> str | None:
    """The label from `labels` that the reply chose, or None (unreadable or ambiguous)."""
    return read_choice(text, labels).label
