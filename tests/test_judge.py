"""Judge rubrics: rendering, and parsing the many shapes of replies local judge models give."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnllmtest.judge import JudgeParseError, judge_messages, packaged_rubrics, parse_judgment, rubric_from_mapping

RUBRIC = packaged_rubrics()["summary_quality"]


def test_packaged_rubrics_have_the_published_criteria():
    for name in ("summary_quality", "answer_quality"):
        rubric = packaged_rubrics()[name]
        assert [c.name for c in rubric.criteria] == ["accuracy", "faithfulness", "coherence"]
        assert (rubric.low, rubric.high) == (1, 10)
    assert [c.label for c in RUBRIC.criteria] == ["Độ chính xác", "Tính trung thực", "Tính mạch lạc"]


def test_the_prompt_names_every_criterion_the_scale_and_the_json_shape():
    system, user = judge_messages(RUBRIC, [("Văn bản nguồn", "Bài báo."), ("Bản tóm tắt cần chấm", "Tóm tắt.")])
    assert "từ 1 (rất kém) đến 10 (xuất sắc)" in system["content"]
    assert all(f"- {c.name} ({c.label}):" in system["content"] for c in RUBRIC.criteria)
    assert '{"accuracy": <1-10>, "faithfulness": <1-10>, "coherence": <1-10>, "ly_do": "<lý do>"}' in system["content"]
    with pytest.raises(JudgeParseError):  # a judge that copies the shape gives no score
        parse_judgment('{"accuracy": <1-10>, "faithfulness": <1-10>, "coherence": <1-10>, "ly_do": "<lý do>"}', RUBRIC)
    assert user["content"] == "### Văn bản nguồn\nBài báo.\n\n### Bản tóm tắt cần chấm\nTóm tắt."
    strict = judge_messages(RUBRIC, [("A", "b")], strict=True)[1]["content"]
    assert "câu trả lời trước không hợp lệ" in strict and "accuracy, faithfulness, coherence" in strict


@pytest.mark.parametrize(
    ("reply", "scores", "rationale"),
    [
        ('{"accuracy": 8, "faithfulness": 9, "coherence": 7, "ly_do": "Đủ ý chính."}', (8, 9, 7), "Đủ ý chính."),
        (
            'Đây là đánh giá của tôi:\n```json\n{"accuracy": 6, "faithfulness": 5, "coherence": 8, '
            '"lý do": "Thiếu con số thương vong."}\n```\nHy vọng hữu ích!',
            (6, 5, 8),
            "Thiếu con số thương vong.",
        ),
        ('{"Độ chính xác": "7/10", "Tính trung thực": "8 điểm", "Tính mạch lạc": 9}', (7, 8, 9), ""),
        ("Độ chính xác: 8\nTính trung thực: 7/10\nTính mạch lạc: 6\nNhận xét: khá tốt.", (8, 7, 6), None),
        ("**Accuracy**: 9\n- faithfulness = 10\n* Coherence：8", (9, 10, 8), None),
        ('{"accuracy": 7.5, "faithfulness": 8, "coherence": 8}', (7.5, 8, 8), ""),
        ('{"scores": [1, 2]} rồi {"do_chinh_xac": 4, "tinh_trung_thuc": 5, "tinh_mach_lac": 6}', (4, 5, 6), None),
        ('{"accuracy": 8, "faithfulness": 9, "coherence": 7', (8, 9, 7), None),  # JSON cut short
    ],
)
def test_replies_in_many_shapes_parse(reply, scores, rationale):
    judgment = parse_judgment(reply, RUBRIC)
    assert tuple(judgment.scores.values()) == scores
    assert judgment.overall == pytest.approx(sum(scores) / 3)
    if rationale is not None:
        assert judgment.rationale == rationale
    else:
        assert judgment.rationale  # the prose stands in when the JSON has no rationale


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ('{"accuracy": 11, "faithfulness": 9, "coherence": 7}', "'accuracy': score 11 is outside 1-10"),
        ('{"accuracy": 0, "faithfulness": 9, "coherence": 7}', "'accuracy': score 0 is outside 1-10"),
        ('{"accuracy": "4/5", "faithfulness": 4, "coherence": 4}', "scored 4/5, but the scale is 1-10"),
        ('{"accuracy": 8, "faithfulness": 9}', "no score for coherence"),
        ('{"accuracy": 8, "faithfulness": 9, "coherence": "tốt"}', "'coherence': expected a number"),
        ('{"accuracy": true, "faithfulness": 9, "coherence": 7}', "'accuracy': expected a number, got True"),
        ('{"accuracy": 8, "faithfulness": ', "no score for faithfulness, coherence"),
        ("Bản tóm tắt này khá tốt, tôi cho điểm cao.", "no score for accuracy, faithfulness, coherence"),
        ("", "no score for accuracy"),
        ('{"accuracy": 1-10, "faithfulness": 1-10, "coherence": 1-10}', "no score for accuracy"),  # the scale, copied
    ],
)
def test_unusable_replies_are_errors_never_defaults(reply, problem):
    with pytest.raises(JudgeParseError, match=re.escape(problem)):
        parse_judgment(reply, RUBRIC)


def test_a_single_criterion_rubric_reads_a_bare_score():
    rubric = rubric_from_mapping("overall", {"criteria": [{"name": "overall", "description": "Chất lượng chung"}]})
    assert parse_judgment("Điểm: 8", rubric).scores == {"overall": 8}
    assert parse_judgment("Tôi chấm 7/10 vì... Score: 7/10", rubric).scores == {"overall": 7}


def test_weights_shape_the_overall_score():
    rubric = rubric_from_mapping(
        "weighted",
        {"scale": {"min": 0, "max": 5}, "criteria": [
            {"name": "a", "description": "x", "weight": 3},
            {"name": "b", "description": "y", "weight": 1},
        ]},
    )
    assert parse_judgment('{"a": 4, "b": 0}', rubric).overall == 3.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "'criteria' must be a non-empty list"),
        ({"criteria": [{"name": "a"}]}, "criterion 1 needs 'name' and 'description'"),
        ({"criteria": [{"name": "a", "description": "x", "weight": 0}]}, "needs a positive weight"),
        ({"scale": {"min": 5, "max": 5}, "criteria": [{"name": "a", "description": "x"}]}, "min 5 must be below max 5"),
    ],
)
def test_bad_rubrics_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        rubric_from_mapping("r", data)


@given(st.text())
def test_parsing_any_text_either_succeeds_in_range_or_raises_the_parse_error(text):
    try:
        judgment = parse_judgment(text, RUBRIC)
    except JudgeParseError:
        return
    assert all(RUBRIC.low <= score <= RUBRIC.high for score in judgment.scores.values())
