"""Judge rubrics (the YAML format, the packaged ones), the judge block of a suite, and judging items:
verdict coverage, failure classes, the retry, truncated replies, primed base-model judges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import ScriptedJudge

from vnllmtest.aggregate import judge_agreement
from vnllmtest.backends import HFSettings, load_backend
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.evaluation import ScoreJob
from vnllmtest.judge import JudgeParseError, judge_messages, packaged_rubrics, parse_judgment, rubric_from_mapping
from vnllmtest.judging import Verdict, judge_all, with_verdicts
from vnllmtest.loaders.base import Item
from vnllmtest.outcomes import ItemResult
from vnllmtest.runner import Runner
from vnllmtest.suite import JudgeSpec, SuiteError, load_suite

VIMS = packaged_rubrics()["vims_published"]
READABLE = '{"score": 7, "faithfulness": 8, "coverage": 6, "coherence": 9, "ly_do": "Đủ ý chính."}'


def test_packaged_rubrics_reproduce_the_published_protocol_and_keep_the_criteria_options():
    assert VIMS.holistic.name == "score" and VIMS.holistic.label == "Điểm tổng thể"
    assert [c.name for c in VIMS.criteria] == ["faithfulness", "coverage", "coherence"]
    vtsnlp = packaged_rubrics()["vtsnlp_published"]
    assert vtsnlp.holistic.name == "score" and vtsnlp.criteria == ()
    for aspect in ("độ chính xác", "độ đầy đủ", "tính mạch lạc", "mức độ phù hợp"):
        assert aspect in vtsnlp.holistic.description.lower()
    for name in ("summary_quality", "answer_quality"):
        rubric = packaged_rubrics()[name]
        assert rubric.holistic is None and [c.name for c in rubric.criteria] == ["accuracy", "faithfulness", "coherence"]
    assert all((r.low, r.high) == (1, 10) for r in packaged_rubrics().values())


def test_a_rubric_has_a_holistic_score_criteria_or_both():
    holistic = rubric_from_mapping("h", {"holistic": {"description": "Chất lượng chung."}})
    assert (holistic.holistic.name, holistic.holistic.label, holistic.criteria) == ("score", "Điểm tổng thể", ())
    assert holistic.overall({"score": 7}) is None and holistic.headline({"score": 7}) == 7
    both = rubric_from_mapping("b", {
        "holistic": {"name": "tong_the", "label": "Tổng thể", "description": "x"},
        "criteria": [{"name": "a", "description": "x", "weight": 3}, {"name": "b", "description": "y", "aliases": ["Bê"]}],
        "scale": {"min": 0, "max": 5},
    })
    assert [c.name for c in both.scored] == ["tong_the", "a", "b"]
    scores = {"tong_the": 2, "a": 4, "b": 0}
    assert both.overall(scores) == 3.0 and both.headline(scores) == 2  # pass_min reads the holistic score
    assert parse_judgment("Tổng thể: 2\nA: 4\nBê: 0", both).scores == {"tong_the": 2, "a": 4, "b": 0}
    criteria = rubric_from_mapping("c", {"criteria": [{"name": "a", "description": "x"}, {"name": "b", "description": "y"}]})
    assert criteria.headline({"a": 4, "b": 6}) == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "give a 'holistic' score, 'criteria', or both"),
        ({"criteria": []}, "give a 'holistic' score, 'criteria', or both"),
        ({"criteria": "accuracy"}, "'criteria' must be a list"),
        ({"criteria": [{"name": "a"}]}, "criterion 1 needs 'name' and 'description'"),
        ({"holistic": {"label": "Điểm"}}, "holistic needs 'name' and 'description'"),
        ({"criteria": [{"name": "a", "description": "x", "weight": 0}]}, "'a' needs a positive weight"),
        ({"criteria": [{"name": "score", "description": "x"}]}, "criterion name 'score' is reserved"),
        ({"criteria": [{"name": "overall", "description": "x"}]}, "criterion name 'overall' is reserved"),
        ({"criteria": [{"name": "Độ chính xác", "description": "x"}]}, "must be lowercase letters, digits and _"),
        ({"holistic": {"name": "a", "description": "x"}, "criteria": [{"name": "a", "description": "y"}]}, "score names must differ"),
        ({"criteria": [{"name": "a", "description": "x", "aliases": "A"}]}, "'aliases' must be a list of names"),
        ({"criteria": [{"name": "a", "description": "x", "mota": "y"}]}, "criterion 1 has unknown key 'mota'"),
        ({"holistik": {"description": "x"}}, "unknown key 'holistik'"),
        ({"scale": {"min": 5, "max": 5}, "criteria": [{"name": "a", "description": "x"}]}, "min 5 must be below max 5"),
        ({"scale": {"min": 1, "max": 9.5}, "criteria": [{"name": "a", "description": "x"}]}, "must be whole numbers"),
    ],
)
def test_bad_rubrics_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        rubric_from_mapping("r", data)


def test_the_prompt_asks_for_the_holistic_score_first_then_each_criterion_in_json():
    system, user = judge_messages(VIMS, [("Các bài báo", "Bài 1."), ("Bản tóm tắt cần chấm", "Tóm tắt.")])
    content = system["content"]
    assert "từ 1 (rất kém) đến 10 (xuất sắc)" in content
    assert f"Điểm tổng thể (score): {VIMS.holistic.description}" in content
    assert all(f"- {c.name} ({c.label}): {c.description}" in content for c in VIMS.criteria)
    shape = '{"score": <1-10>, "faithfulness": <1-10>, "coverage": <1-10>, "coherence": <1-10>, "ly_do": "<lý do>"}'
    assert shape in content
    with pytest.raises(JudgeParseError):  # a judge that copies the shape gives no score
        parse_judgment(shape, VIMS)
    assert user["content"] == "### Các bài báo\nBài 1.\n\n### Bản tóm tắt cần chấm\nTóm tắt."
    strict = judge_messages(VIMS, [("A", "b")], strict=True)[1]["content"]
    assert "câu trả lời trước không đọc được" in strict and "score, faithfulness, coverage, coherence" in strict
    holistic_only = judge_messages(packaged_rubrics()["vtsnlp_published"], [("A", "b")])[0]["content"]
    assert "Chấm riêng từng tiêu chí" not in holistic_only and '{"score": <1-10>, "ly_do": "<lý do>"}' in holistic_only


def test_the_public_judge_api_imports_alone_and_parses_a_reply():
    script = (
        "from vnllmtest.judge import packaged_rubrics, parse_judgment\n"
        "judgment = parse_judgment('{\"score\": 8, \"ly_do\": \"Tốt.\"}', packaged_rubrics()['vtsnlp_published'])\n"
        "print(judgment.scores, judgment.rationale == 'Tốt.')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)  # a fresh import
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "{'score': 8.0} True"


@pytest.mark.parametrize(
    ("rubric", "metrics"),
    [
        (
            "vims_published",
            ["judge_score", "judge_overall", "judge_faithfulness", "judge_coverage", "judge_coherence", "verdict_coverage"],
        ),
        ("vtsnlp_published", ["judge_score", "verdict_coverage"]),
        ("summary_quality", ["judge_overall", "judge_accuracy", "judge_faithfulness", "judge_coherence", "verdict_coverage"]),
    ],
)
def test_the_judge_block_reports_the_holistic_score_first_and_its_coverage_last(rubric, metrics):
    assert JudgeSpec(rubric=rubric, sees=[{"title": "A", "text": "{{ output }}"}]).metrics == metrics


def test_judge_block_defaults_and_limits():
    spec = JudgeSpec(rubric="vims_published", sees=[{"title": "A", "text": "{{ output }}", "max_tokens": 150}])
    assert (spec.min_coverage, spec.max_new_tokens, spec.max_tokens_per_section, spec.sees[0].max_tokens) == (95, 512, 1024, 150)
    for bad in ({"min_coverage": 101}, {"min_coverage": -1}, {"pass_min": 11}):
        with pytest.raises(ValueError):
            JudgeSpec(rubric="vims_published", sees=[{"title": "A", "text": "x"}], **bad)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        JudgeSpec(rubric="vims_published", sees=[{"title": "A", "text": "x", "max_tokens": 0}])


def test_the_seed_suites_judge_with_the_published_rubrics(tmp_path):
    suites = Path(__file__).resolve().parents[1] / "suites"
    vims, vtsnlp = (load_suite(suites / f"{name}.yaml").spec for name in ("vims", "vtsnlp"))
    assert vims.judge.rubric == "vims_published" and vtsnlp.judge.rubric == "vtsnlp_published"
    assert vims.reported_metrics[-6:] == JudgeSpec(rubric="vims_published", sees=vims.judge.sees).metrics
    assert [s.max_tokens for s in vims.judge.sees] == [600, 150, None]
    assert [s.max_tokens for s in vtsnlp.judge.sees] == [240, 180, None]
    edited = (suites / "vims.yaml").read_text(encoding="utf-8").replace("max_tokens: 600", "max_tokens: 0")
    (tmp_path / "vims.yaml").write_text(edited, encoding="utf-8")
    with pytest.raises(SuiteError, match="judge.sees.0.max_tokens"):
        load_suite(tmp_path / "vims.yaml")


# -- judging items ------------------------------------------------------------------------------


SUITE = """vnllmtest: 1
name: tom_tat
task: summarization
dataset: {adapter: vims, source: data.jsonl}
prompt: {template: "{{ passages }}"}
metrics: [rouge_l]
item_pass: {metric: rouge_l, min: 0.2}
judge:
  rubric: RUBRIC
  sees:
    - {title: Các bài báo, text: "{% for d in documents %}{{ d.content }}\\n{% endfor %}", max_tokens: 40}
    - {title: Bản tóm tắt cần chấm, text: "{{ output }}"}
  max_tokens_per_section: 500
  pass_min: 6
"""
ITEM = Item(
    id="cum_07",
    fields={"documents": [{
        "title": "Mưa lớn",
        "content": "Mưa lớn kéo dài ba ngày khiến nhiều tuyến đường ở thành phố ngập sâu, giao thông tê liệt.",
    }]},
    references=("Mưa lớn ba ngày làm ngập nhiều tuyến đường.",),
)


@pytest.fixture
def suite(tmp_path):
    def make(rubric: str = "vims_published"):
        (tmp_path / f"{rubric}.yaml").write_text(SUITE.replace("RUBRIC", rubric), encoding="utf-8")
        return load_suite(tmp_path / f"{rubric}.yaml")
    return make


def judged(suite, replies, plain=False, cap=None) -> tuple[Verdict, ScriptedJudge]:
    judge = ScriptedJudge(replies, plain)
    [verdict] = judge_all(judge, [ScoreJob(suite, ITEM, "ung_vien", "Mưa lớn làm ngập đường phố.")], Runner(), cap)
    return verdict, judge


def passed(metrics=None) -> ItemResult:
    return ItemResult("tom_tat", "ung_vien", "cum_07", "passed", None, None, "x", metrics=metrics or {"rouge_l": 0.5})


def test_a_readable_verdict_gives_every_judge_metric_and_full_coverage(suite):
    spec = suite()
    verdict, judge = judged(spec, [(READABLE, "stop")])
    assert verdict.scores == {"score": 7, "faithfulness": 8, "coverage": 6, "coherence": 9}
    assert (verdict.holistic, verdict.overall, verdict.rationale) == (7, pytest.approx(23 / 3), "Đủ ý chính.")
    [request] = judge.requests
    assert request.max_new_tokens == 512 and request.stop == ()  # a chat judge may reason at length
    assert len(verdict.truncated_sections) == 1 and verdict.truncated_sections[0]["max_tokens"] == 40
    result = with_verdicts(passed(), [verdict], spec.spec.judge)
    assert result.metrics == {
        "rouge_l": 0.5, "verdict_coverage": 1.0, "judge_score": 7, "judge_overall": pytest.approx(23 / 3),
        "judge_faithfulness": 8, "judge_coverage": 6, "judge_coherence": 9,
    }
    assert result.status == "passed" and result.judges[0]["holistic"] == 7


def test_pass_min_reads_the_holistic_score_when_the_rubric_has_one(suite):
    low_holistic = '{"score": 5, "faithfulness": 9, "coverage": 9, "coherence": 9}'
    spec = suite()
    result = with_verdicts(passed(), [judged(spec, [(low_holistic, "stop")])[0]], spec.spec.judge)
    assert (result.status, result.failure_class) == ("missed", "judge_score_low")
    criteria = suite("summary_quality")
    verdict, _ = judged(criteria, [('{"accuracy": 5, "faithfulness": 7, "coherence": 7}', "stop")])
    result = with_verdicts(passed(), [verdict], criteria.spec.judge)
    assert result.status == "passed" and result.metrics["judge_overall"] == pytest.approx(19 / 3)
    assert "judge_score" not in result.metrics


def test_an_unreadable_reply_is_retried_strictly_once(suite):
    verdict, judge = judged(suite(), [("Bản tóm tắt khá tốt.", "stop"), (READABLE, "stop")])
    assert verdict.scores is not None and verdict.error is None and len(verdict.raw_outputs) == 2
    assert "câu trả lời trước không đọc được" in judge.requests[1].prompt


@pytest.mark.parametrize(
    ("first", "retry", "failure_class"),
    [
        (("Tôi sẽ phân tích từng tiêu chí. Về tính trung", "length"), ("Không chấm được.", "stop"), "judge_error"),
        (("Không chấm được.", "stop"), ('{"score": 7, "faithfulness": 8, "cover', "length"), "judge_truncated"),
        (("Về tính trung", "length"), ("Trước hết, các bài báo", "length"), "judge_truncated"),
    ],
)
def test_an_unreadable_verdict_is_counted_and_classed_by_the_last_attempt(suite, first, retry, failure_class):
    spec = suite()
    verdict, _ = judged(spec, [first, retry])
    assert verdict.scores is None and verdict.error.startswith(f"{failure_class}:")
    if failure_class == "judge_truncated":
        assert "cut by its budget after 37 new tokens" in verdict.error
    result = with_verdicts(passed(), [verdict], spec.spec.judge)
    assert (result.status, result.failure_class) == ("missed", failure_class)
    assert result.metrics == {"rouge_l": 0.5, "verdict_coverage": 0.0}  # no judge_* value, never a default
    assert verdict.error in result.message
    missed = with_verdicts(
        ItemResult("tom_tat", "ung_vien", "cum_07", "missed", "wrong", None, "x", metrics={"rouge_l": 0.0}), [verdict], spec.spec.judge
    )
    assert missed.failure_class == "wrong" and missed.metrics["verdict_coverage"] == 0.0  # counted all the same


def test_a_judge_that_failed_errors_the_item_without_coverage(suite):
    spec = suite()
    failed = Verdict("scripted", error="judge model error: out of memory", judge_failed=True)
    result = with_verdicts(passed(), [failed], spec.spec.judge)
    assert (result.status, result.failure_class, result.metrics["verdict_coverage"]) == ("error", "judge_failed", 0.0)


def test_only_the_first_judge_scores_the_item(suite):
    spec = suite()
    first, _ = judged(spec, [("Không rõ.", "stop"), ("Vẫn không rõ.", "stop")])
    second, _ = judged(spec, [(READABLE, "stop")])
    result = with_verdicts(passed(), [first, second], spec.spec.judge)
    assert result.metrics["verdict_coverage"] == 0.0 and "judge_score" not in result.metrics
    assert [j["scores"] is not None for j in result.judges] == [False, True]


def test_a_primed_base_model_judge_stops_at_the_closing_brace(suite):
    continuation = ' 7, "faithfulness": 8, "coverage": 6, "coherence": 9, "ly_do": "Đủ ý chính."'
    verdict, judge = judged(suite(), [(continuation, "stop")], plain=True, cap=24)
    [request] = judge.requests
    assert request.prompt.endswith('\n\n{"score": ') and request.stop == ("}",) and request.max_new_tokens == 24
    assert verdict.raw_outputs == ['{"score": ' + continuation + "}"] and verdict.scores["coherence"] == 9
    cut, judge = judged(suite(), [(' 7, "faithfulness": 8, "coverage": 6, "coherence": 1', "length")] * 2, plain=True)
    assert judge.requests[0].max_new_tokens == 128  # it writes only the JSON: not the 512 kept for reasoning
    assert cut.scores is None and cut.reply_cut and cut.raw_outputs[0].endswith('"coherence": 1')  # no brace added


def test_a_real_judge_model_cut_by_its_reply_budget_is_judge_truncated(suite, tiny_model_dir, tmp_path):
    """The tiny random-weight model never writes JSON: with 3 new tokens its reply is cut, twice."""
    judge = load_backend(parse_model_spec(str(tiny_model_dir)), HFSettings(device="cpu"))
    spec = suite()
    try:
        [verdict] = judge_all(judge, [ScoreJob(spec, ITEM, "ung_vien", "Mưa lớn.")], Runner(), max_new_tokens_cap=3)
    finally:
        judge.close()
    assert verdict.reply_cut and len(verdict.raw_outputs) == 2 and verdict.error.startswith("judge_truncated:")
    assert with_verdicts(passed(), [verdict], spec.spec.judge).failure_class == "judge_truncated"


def test_judge_agreement_compares_the_holistic_score_and_skips_a_missing_overall(suite):
    spec = suite("vtsnlp_published")
    records = []
    for mine, theirs in ((7, 6), (9, 9), (4, 5)):
        first, _ = judged(spec, [(f'{{"score": {mine}}}', "stop")])
        second, _ = judged(spec, [(f"Điểm: {theirs}", "stop")])
        second.judge = "second"
        records.append(with_verdicts(passed(), [first, second], spec.spec.judge))
    agreement = judge_agreement(records)["second"]
    assert list(agreement) == ["score"] and agreement["score"]["n"] == 3
    assert agreement["score"]["mean_abs_diff"] == pytest.approx(2 / 3)
