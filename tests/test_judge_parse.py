"""Reading judge replies: a golden table of reply shapes, and properties that hold for every reply
(never a score the judge did not give, never a guess between two)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vnllmtest.judge import JudgeParseError, packaged_rubrics
from vnllmtest.judge_parse import parse_judgment

REPLIES = Path(__file__).parent / "golden" / "judge" / "replies"
EXPECTED = yaml.safe_load((REPLIES / "expected.yaml").read_text(encoding="utf-8"))
VIMS = packaged_rubrics()["vims_published"]
LABELS = {"score": "Điểm tổng thể", "faithfulness": "Tính trung thực", "coverage": "Độ bao phủ", "coherence": "Tính mạch lạc"}


def test_the_golden_table_covers_every_reply_file_and_many_shapes():
    files = {path.name for path in REPLIES.glob("*.txt")}
    assert files == set(EXPECTED)
    assert len(files) >= 60
    outcomes = [entry.get("error", "scores") for entry in EXPECTED.values()]
    assert sum(outcome == "scores" for outcome in outcomes) >= 40
    assert sum(outcome.startswith("ambiguous") for outcome in outcomes) >= 5
    assert {entry["rubric"] for entry in EXPECTED.values()} == set(packaged_rubrics())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_reply(name):
    entry = EXPECTED[name]
    text = (REPLIES / name).read_text(encoding="utf-8")
    rubric = packaged_rubrics()[entry["rubric"]]
    if "scores" in entry:
        judgment = parse_judgment(text, rubric, cut=entry.get("cut", False))
        assert judgment.scores == {key: float(value) for key, value in entry["scores"].items()}
        assert list(judgment.scores) == [c.name for c in rubric.scored]
    else:
        with pytest.raises(JudgeParseError) as error:
            parse_judgment(text, rubric, cut=entry.get("cut", False))
        assert entry["error"] in str(error.value)


def test_the_holistic_score_and_the_criteria_mean_are_kept_apart():
    judgment = parse_judgment('{"score": 4, "faithfulness": 9, "coverage": 8, "coherence": 10}', VIMS)
    assert judgment.holistic == 4 and judgment.overall == 9
    holistic_only = parse_judgment('{"score": 8}', packaged_rubrics()["vtsnlp_published"])
    assert holistic_only.holistic == 8 and holistic_only.overall is None


def test_the_rationale_comes_from_the_scored_json_else_the_prose():
    reply = 'Mẫu: {"ly_do": "<lý do>"}\n{"score": 6, "faithfulness": 7, "coverage": 5, "coherence": 8, "ly_do": "Thiếu 1 ý."}'
    assert parse_judgment(reply, VIMS).rationale == "Thiếu 1 ý."
    lines = "Điểm tổng thể: 6\nTính trung thực: 7\nĐộ bao phủ: 5\nTính mạch lạc: 8"
    assert parse_judgment(lines, VIMS).rationale == " ".join(lines.split())


# -- properties over generated replies -------------------------------------------------------------

SCORES = st.fixed_dictionaries({key: st.integers(1, 10) for key in LABELS})
# Lines that mention criteria and numbers without giving a score: counts, ranges, rationales, the rubric.
DISTRACTORS = [
    "Tính mạch lạc: 2 câu đầu rời rạc.",
    "Độ bao phủ: 3 sự kiện chính đều có mặt, thiếu 1 con số.",
    "Lý do: tính trung thực: 4 vì có một chi tiết chưa rõ nguồn.",
    "Nhận xét: Độ bao phủ: 9 nếu tính cả phần phụ.",
    "Theo thang điểm 10, mỗi tiêu chí được chấm từ 1-10.",
    "Tổng điểm: 27/40.",
    "Bài 2 có 12 đoạn, bài 3 đăng ngày 5/6.",
    "Điểm mạnh: 3 ý chính rõ ràng.",
    "Tính trung thực: 7-8 là hợp lý.",
    "- faithfulness (Tính trung thực): mọi thông tin đều có trong các bài báo.",
]


def render(scores: dict[str, int], shape: str) -> str:
    """One complete score set in one of the shapes judges write."""
    labels = {key: LABELS[key] for key in scores}
    if shape == "json":
        return json.dumps({**scores, "ly_do": "Tính mạch lạc: 3 lỗi chính tả."}, ensure_ascii=False)
    if shape == "lines":
        return "\n".join(f"{labels[k]}: {v}" for k, v in scores.items())
    if shape == "numbered":
        return "\n".join(f"{n}. **{labels[k]}:** {v}/10" for n, (k, v) in enumerate(scores.items(), start=1))
    if shape == "parenthesised":
        return "\n".join(f"{labels[k]} ({v}/10): nhận xét ngắn." for k, v in scores.items())
    if shape == "score_first":
        return "\n".join(f"{v} - {labels[k]}" for k, v in scores.items())
    if shape == "table":
        rows = "\n".join(f"| {labels[k]} | {v} | ghi chú 2 ý |" for k, v in scores.items())
        return f"| Tiêu chí | Điểm | Nhận xét |\n|---|---|---|\n{rows}"
    assert shape == "english"
    names = {"score": "Overall score", "faithfulness": "Faithfulness", "coverage": "Coverage", "coherence": "Coherence"}
    return "\n".join(f"{names[k]}: {v}" for k, v in scores.items())


SHAPES = st.sampled_from(["json", "lines", "numbered", "parenthesised", "score_first", "table", "english"])


def _fresh(scores: dict[str, int], shape: str) -> bool:
    # Score-first lines valued 1, 2, 3, 4 read as a numbered list: skipped by design, not under test here.
    return not (shape == "score_first" and list(scores.values()) == [1, 2, 3, 4])


@settings(max_examples=300, deadline=None)
@given(SCORES, SHAPES, st.lists(st.sampled_from(DISTRACTORS), max_size=4), st.randoms(use_true_random=False))
def test_a_score_set_among_distractors_reads_exactly(scores, shape, distractors, rng):
    if not _fresh(scores, shape):
        return
    block = render(scores, shape)
    lines = list(distractors)
    lines.insert(rng.randint(0, len(lines)), block)
    assert parse_judgment("\n\n".join(lines), VIMS).scores == {k: float(v) for k, v in scores.items()}


@settings(max_examples=200, deadline=None)
@given(SCORES, SCORES, SHAPES, SHAPES, st.sampled_from(["Điểm cuối cùng:", "Sau khi xem lại:", "Kết luận:", "Final:"]))
def test_two_different_sets_are_ambiguous_unless_a_final_marker_picks_the_last(first, last, shape_a, shape_b, marker):
    if first == last or not (_fresh(first, shape_a) and _fresh(last, shape_b)):
        return
    if shape_a == shape_b == "table":
        shape_b = "json"  # two tables side by side are one table
    with pytest.raises(JudgeParseError, match="ambiguous"):
        parse_judgment(f"{render(first, shape_a)}\n\n{render(last, shape_b)}", VIMS)
    revised = f"Bản nháp:\n{render(first, shape_a)}\n\n{marker}\n{render(last, shape_b)}"
    assert parse_judgment(revised, VIMS).scores == {k: float(v) for k, v in last.items()}


@settings(max_examples=60, deadline=None)
@given(SCORES, SHAPES)
def test_a_reply_cut_anywhere_gives_its_own_scores_or_an_error(scores, shape):
    """Cut by the token budget at any character: never a shortened number ("10" read as "1")."""
    if not _fresh(scores, shape):
        return
    text = render(scores, shape)
    for end in range(len(text) + 1):
        try:
            judgment = parse_judgment(text[:end], VIMS, cut=True)
        except JudgeParseError:
            continue
        assert judgment.scores == {k: float(v) for k, v in scores.items()}, text[:end]


def test_a_cut_reply_is_read_once_its_numbers_are_whole():
    rubric = packaged_rubrics()["vtsnlp_published"]
    assert parse_judgment('{"score": 10, "ly_do": "Đầy', rubric, cut=True).scores == {"score": 10}
    with pytest.raises(JudgeParseError):
        parse_judgment('{"score": 1', rubric, cut=True)
    assert parse_judgment('{"score": 1', rubric).scores == {"score": 1}  # a reply that ended there


VTSNLP = packaged_rubrics()["vtsnlp_published"]


@pytest.mark.parametrize(
    "reply",
    [
        "Điểm: 7\nSau khi xem lại, tôi cho điểm: 8",
        "Điểm tổng thể: 9. Sau khi cân nhắc lại, điểm: 6.",
        "Score: 9\nFinal: 6",
        "Overall score: 9 -> revised: 5/10",
        "Điểm: 8/10\nKết luận: chỉ đáng 6,5 điểm.",
        "Điểm: 8\nSau khi xem lại: 60/100",
    ],
)
def test_a_revision_that_cannot_be_read_is_an_error_never_the_earlier_score(reply):
    with pytest.raises(JudgeParseError, match="revision"):
        parse_judgment(reply, VTSNLP)


def test_a_revision_cut_by_the_budget_is_an_error_never_the_earlier_score():
    with pytest.raises(JudgeParseError):
        parse_judgment("Điểm: 7\nSau khi xem lại, điểm cuối cùng là 8", VTSNLP, cut=True)


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Điểm: 8\nSau khi xem lại, tôi giữ nguyên 8 điểm.", 8),
        ("Điểm: 7/10\nTóm lại, câu trả lời có 3 ý đúng và 2 ý thiếu.", 7),
        ("Điểm cuối cùng (final): 6", 6),
        ("Điểm: 9\nSau khi xem lại 2 lần, tôi thấy câu trả lời ổn.", 9),
        ("Điểm: 6\nKết luận: bản tóm tắt bỏ sót sự kiện ngày 15.", 6),
    ],
)
def test_a_marker_after_the_score_without_a_new_score_keeps_it(reply, score):
    assert parse_judgment(reply, VTSNLP).scores == {"score": score}


@pytest.mark.parametrize(
    "reply", ["Điểm: 7/10 hoặc 8/10", "Điểm: 7, hoặc 8", "Điểm: 7 điểm hay 8 điểm", "Score: 6 or 7/10"]
)
def test_a_hedge_between_two_scores_is_no_score(reply):
    with pytest.raises(JudgeParseError, match="no score"):
        parse_judgment(reply, VTSNLP)


@given(st.text())
def test_any_text_either_reads_in_range_or_raises_the_parse_error(text):
    for rubric in packaged_rubrics().values():
        try:
            judgment = parse_judgment(text, rubric, cut=random.random() < 0.5)
        except JudgeParseError:
            continue
        assert all(rubric.low <= score <= rubric.high for score in judgment.scores.values())


@given(st.text(alphabet="{}[]\":,0123456789 /\n|-*.#abcdeiđểmĐộ chínhxác", max_size=200))
def test_json_like_noise_either_reads_in_range_or_raises_the_parse_error(text):
    for rubric in packaged_rubrics().values():
        try:
            judgment = parse_judgment(text, rubric)
        except JudgeParseError:
            continue
        assert all(rubric.low <= score <= rubric.high for score in judgment.scores.values())
