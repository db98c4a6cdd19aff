"""End to end through pytest (pytester) with the replay backend, where every metric is known."""

from __future__ import annotations

import pytest

from support import read_run, replay_rows, write_suite

MC_RECORDS = [
    {"id": "01-0001", "question": "1 + 1 bằng mấy?", "choices": ["A. 2", "B. 3", "C. 4", "D. 5"], "answer": "A"},
    {"id": "01-0002", "question": "2 + 2 bằng mấy?", "choices": ["A. 3", "B. 5", "C. 4"], "answer": "C"},
    {"id": "32-0003", "question": "Năm 1010 dời đô về đâu?", "choices": ["A. Huế", "B. Thăng Long"], "answer": "B"},
    {"id": "32-0004", "question": "Sông dài nhất?", "choices": ["A. Hồng", "B. Đà", "C. Mê Kông", "D. Mã"], "answer": "C"},
]
# accuracy: A right, B wrong (gold C), no letter (extraction failed), (C) right -> 2/4 = 50.
MC_PREDICTIONS = {"01-0001": "Đáp án: A", "01-0002": "B", "32-0003": "Tôi không biết", "32-0004": "(C) Mê Kông"}

QA_RECORDS = [
    {"id": "q1", "context": "Hà Nội là thủ đô.", "question": "Thủ đô?", "answers": {"text": ["Hà Nội"], "answer_start": [0]}},
    {
        "id": "q2",
        "context": "Sông Mê Kông chảy qua sáu nước.",
        "question": "Sông nào?",
        "answers": {"text": ["sông Mê Kông", "Mê Kông"], "answer_start": [0, 5]},
    },
    {"id": "q3", "context": "Trời mưa.", "question": "Ai thắng?", "answers": {"text": [], "answer_start": []}, "is_impossible": True},
    {"id": "q4", "context": "Trời nắng.", "question": "Bao nhiêu?", "answers": {"text": [], "answer_start": []}, "is_impossible": True},
]
# EM: 1, 0, 1 (abstention), 0 -> 50.  F1: 1, 0.8 (best ref "Mê Kông": P 2/3, R 1), 1, 0 -> 70.
QA_PREDICTIONS = {"q1": "Hà Nội", "q2": "Mê Kông dài", "q3": "Không có câu trả lời.", "q4": "Hà Nội"}

SUM_RECORDS = [
    {"id": "c1", "documents": [{"title": "A", "content": "Bài một."}], "summaries": ["Hà Nội là thủ đô của Việt Nam", "Khác hẳn"]},
    {"id": "c2", "documents": [{"title": "B", "content": "Bài hai."}], "summaries": ["Hà Nội là thủ đô của Việt Nam"]},
]
# ROUGE-L: c1 equals a gold summary -> 1; c2: LCS "thủ đô việt nam" = 4 syllables, prediction 7,
# reference 8 -> P 4/7, R 4/8, F = 2*4/(7+8) = 8/15. Mean (1 + 8/15) / 2 = 76.67.
SUM_PREDICTIONS = {"c1": "Hà Nội là thủ đô của Việt Nam", "c2": "Thủ đô Việt Nam là Hà Nội"}

SUITES = {
    "mc": {"task": "multiple_choice"},
    "qa": {"task": "extractive_qa"},
    "summ": {"task": "summarization", "item_pass": {"metric": "rouge_l", "min": 0.9}},
}
GATE_METRICS = {"mc": "accuracy", "qa": "f1", "summ": "rouge_l"}


def suite(name: str, gate_min: float = 40, **fields: object) -> dict:
    """Suite `name`: each item asked by its id, replies scored as generated text, a gate at `gate_min`."""
    return {
        **SUITES[name],
        "prompt": {"template": "Hỏi: {{ id }}"},
        "scoring": {"mode": "generate", "abstentions": ["không có câu trả lời"]},
        "gates": [{"metric": GATE_METRICS[name], "min": gate_min}],
        **fields,
    }


pytestmark = pytest.mark.project(
    suites={name: suite(name) for name in SUITES},
    records={"mc.jsonl": MC_RECORDS, "qa.jsonl": QA_RECORDS, "summ.jsonl": SUM_RECORDS},
    predictions={"preds": replay_rows({**MC_PREDICTIONS, **QA_PREDICTIONS, **SUM_PREDICTIONS}, model="mymodel")},
)


def test_replay_gives_the_hand_computed_metrics_and_passing_gates_exit_zero(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    # misses: mc 01-0002 (wrong) and 32-0003 (no letter), qa q4, summ c2.
    assert outcomes["missed"] == 4 and outcomes["passed"] == 6
    metrics = read_run(project.path).metrics
    assert metrics[("mc", "mymodel", "accuracy")] == pytest.approx(50.0)
    assert metrics[("qa", "mymodel", "exact_match")] == pytest.approx(50.0)
    assert metrics[("qa", "mymodel", "f1")] == pytest.approx(70.0)
    assert metrics[("summ", "mymodel", "rouge_l")] == pytest.approx(100 * (1 + 8 / 15) / 2)
    result.stdout.fnmatch_lines(["*vnllmtest gates*", "mc*mymodel*accuracy >= 40*PASS", "*vnllmtest report: reports/*"])


def test_items_report_the_miss_details(project):
    project.runpytest("suites", "--model", "replay:preds.jsonl")
    items = read_run(project.path).items
    by_id = {item["id"]: item for item in items}
    assert by_id["32-0003"]["status"] == "missed"
    assert by_id["32-0003"]["failure_class"] == "extraction_failed"
    assert by_id["01-0002"]["failure_class"] == "wrong"
    assert by_id["01-0002"]["answer"] == "B" and by_id["01-0002"]["references"] == ["C"]
    assert by_id["q3"]["metrics"] == {"exact_match": 1.0, "f1": 1.0}
    assert by_id["q1"]["prompt"] == "Hỏi: q1"
    assert {item["status"] for item in items} == {"passed", "missed"}


def test_a_failing_gate_fails_the_run_while_misses_alone_do_not(project):
    write_suite(project.path, "mc", suite("mc", gate_min=60))
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == 1
    assert result.parseoutcomes()["missed"] == 4
    result.stdout.fnmatch_lines(["mc*mymodel*accuracy >= 60*FAIL (threshold not met)"])


def test_strict_items_fails_on_misses(project):
    assert project.runpytest("suites", "--model", "replay:preds.jsonl", "--strict-items").ret == 1


def test_miss_shows_reference_output_and_prompt(project):
    result = project.runpytest("suites/mc.yaml", "--model", "replay:preds.jsonl", "-k", "01-0002")
    result.stdout.fnmatch_lines(
        [
            "*MISSED (wrong) mc [[]mymodel] item 01-0002*",
            'reference: ["C"]',
            'output:    "B"',
            "prompt:",
            "Hỏi: 01-0002",
        ]
    )
    assert result.parseoutcomes() == {"missed": 1, "deselected": 3}


def test_misses_are_listed_with_rm_and_details_are_capped(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "-rm", "--show-misses", "1")
    result.stdout.fnmatch_lines(
        [
            "*= misses =*",
            "*MISSED (wrong) mc [[]mymodel] item 01-0002*",
            "... 3 more misses: see items.jsonl*",
            "*short summary of missed items*",
            "MISSED suites/mc.yaml::mc[[]mymodel:01-0002] - MISSED (wrong)*",
            "MISSED suites/mc.yaml::mc[[]mymodel:32-0003] - MISSED (extraction_failed)*",
        ]
    )


def test_last_failed_reselects_the_missed_items(project):
    project.runpytest("suites", "--model", "replay:preds.jsonl")
    again = project.runpytest("suites", "--model", "replay:preds.jsonl", "--lf")
    outcomes = again.parseoutcomes()
    assert outcomes["missed"] == 4 and "passed" not in outcomes


def test_item_ids_markers_and_keywords(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["suites/mc.yaml::mc[[]mymodel:01-0001]", "suites/qa.yaml::qa[[]mymodel:q3]"])
    assert project.runpytest("suites", "--model", "replay:preds.jsonl", "-m", "extractive_qa").parseoutcomes()["passed"] == 3
    by_subject = project.runpytest("suites", "--model", "replay:preds.jsonl", "-k", "subject_32")
    assert by_subject.parseoutcomes() == {"missed": 1, "passed": 1, "deselected": 8}


def test_two_models_get_one_column_each(project, replay):
    other = replay({k: "A" for k in MC_PREDICTIONS}, name="other")
    result = project.runpytest("suites/mc.yaml", "--model", "replay:preds.jsonl", "--model", other)
    assert result.ret == 1  # "other" answers A everywhere: 25 < 40
    result.stdout.fnmatch_lines(["mc*mymodel*PASS", "mc*other*FAIL (threshold not met)"])
    markdown = read_run(project.path).markdown
    assert "| Dataset | Metric | mymodel | other |" in markdown
    assert "| mc | accuracy | 50.0 [" in markdown
    metrics = read_run(project.path).metrics
    assert metrics[("mc", "other", "accuracy")] == pytest.approx(25.0)


def test_missing_prediction_is_an_item_error_that_fails_the_run(project, replay):
    result = project.runpytest("suites/mc.yaml", "--model", replay({"01-0001": "A"}, name="partial"))
    assert result.ret == 1
    assert result.parseoutcomes()["failed"] == 3
    result.stdout.fnmatch_lines(["*ERROR model_error: replay file * has no prediction for id '01-0002'*"])


def test_invalid_suite_is_a_collection_error_naming_file_line_and_key(project):
    path = write_suite(project.path, "mc", suite("mc", dataset={"sampel": 3}))
    result = project.runpytest("suites/mc.yaml", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [f"*{path}: invalid suite (1 problem):", "*line 4: dataset.sampel: unknown key; expected one of: adapter, *"]
    )


def test_yaml_without_the_marker_is_not_collected(project):
    (project.path / "suites" / "other.yaml").write_text("name: not a suite\n", encoding="utf-8")
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "--collect-only", "-q")
    assert "other.yaml" not in result.stdout.str()


def test_xdist_gives_the_same_summary_as_one_process(project):
    single = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert single.ret == 0
    single_metrics = read_run(project.path).metrics
    parallel = project.runpytest_subprocess("suites", "--model", "replay:preds.jsonl", "-n", "2")
    assert parallel.ret == 0
    assert read_run(project.path).metrics == single_metrics


def test_bad_options_are_usage_errors(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "--batch-size", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --batch-size: must be at least 1, got 0*"])
    result = project.runpytest("suites", "--model", "no-such-alias")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown model 'no-such-alias': not an alias (gemma3-270m, *"])
    for option in ("--show-misses", "--show-flips"):
        result = project.runpytest("suites", "--model", "replay:preds.jsonl", option, "-1")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*{option} must be at least 0, got -1*"])


def test_duplicate_suite_names_are_a_collection_error(project):
    (project.path / "suites" / "copy.yaml").write_text((project.path / "suites" / "mc.yaml").read_text("utf-8"), "utf-8")
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*suite name 'mc' is already used by *copy.yaml; names must be unique*"])


def test_a_suite_whose_data_is_missing_never_counts_as_passed(project, monkeypatch):
    """Offline, with a hub source and no local copy: one clear collection error, a failed run, and a
    report that lists the suite as not evaluated while the other suites still run."""
    monkeypatch.setenv("HF_HOME", str(project.path / "hf-home"))
    write_suite(project.path, "mc", suite("mc", dataset={"source": "hf://tridm/VMLU", "local": "vmlu/valid.jsonl"}))
    alone = project.runpytest("suites/mc.yaml", "--model", "replay:preds.jsonl")
    assert alone.ret != 0
    alone.stdout.fnmatch_lines(
        [
            "*suites/mc.yaml: suite 'mc': hf://tridm/VMLU (split train) could not be loaded*"
            "To fix: put a local copy at DIR/vmlu/valid.jsonl and pass --data-dir DIR*",
            "suites/mc.yaml*(suite not collected)*FAIL (see collection error)",
        ]
    )
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "--continue-on-collection-errors")
    assert result.ret == 1 and result.parseoutcomes()["passed"] == 4
    run = read_run(project.path)
    document = run.summary
    assert document["gates_passed"] is False
    assert [failed["path"] for failed in document["run"]["collection_errors"]] == ["suites/mc.yaml"]
    assert {group["suite"] for group in document["results"]} == {"qa", "summ"}
    assert "## Not evaluated" in run.markdown


def test_thinking_is_stripped_before_scoring_and_kept_in_the_report(project, replay):
    thought = {
        "q1": "<think>Đoạn văn nói Hà Nội là thủ đô.</think>\nHà Nội",
        "q2": "<think>Sông Mê Kông chảy qua sáu nước, vậy câu trả lời",
        "q3": "không có câu trả lời",
        "q4": "Hà Nội",
    }
    project.runpytest("suites/qa.yaml", "--model", replay(thought, name="thinking", model="thinker"))
    run = read_run(project.path)
    items = {item["id"]: item for item in run.items}
    assert items["q1"]["status"] == "passed" and items["q1"]["output"] == "Hà Nội"
    assert items["q1"]["thinking"] == "Đoạn văn nói Hà Nội là thủ đô." and items["q1"]["thinking_tokens"] > 0
    assert items["q2"]["status"] == "missed" and items["q2"]["failure_class"] == "thinking_unterminated"
    assert items["q2"]["output"] == "" and items["q2"]["thinking"].startswith("Sông Mê Kông")
    assert run.results[0]["thinking_tokens"] == items["q1"]["thinking_tokens"] + items["q2"]["thinking_tokens"]


JUDGE = {
    "rubric": "summary_quality",
    "sees": [
        {"title": "Nguồn", "text": "{% for d in documents %}{{ d.content }}{% endfor %}"},
        {"title": "Tham khảo", "text": "{{ reference }}"},
        {"title": "Cần chấm", "text": "{{ output }}"},
    ],
    "pass_min": 6,
}


def judged_suite(project: pytest.Pytester, gate_min: float, **judge: object) -> None:
    """The summ suite judged by `JUDGE` (with `judge` on top), its gate on judge_overall."""
    gates = [{"metric": "judge_overall", "min": gate_min}]
    write_suite(project.path, "summ", suite("summ", judge={**JUDGE, **judge}, gates=gates))


# c1 matches a gold summary (ROUGE-L passes) but this judge finds it weak; c2 misses on ROUGE-L.
FIRST_JUDGE = {
    "c1": "Độ chính xác: 4\nTính trung thực: 5/10\nTính mạch lạc: 6",
    "c2": 'Nhận xét:\n```json\n{"accuracy": 8, "faithfulness": 6, "coherence": 10, "ly_do": "Đủ ý, mạch lạc."}\n```',
}


def judges(replay, **replies: dict[str, str]) -> list[str]:
    """A replay judge per name, for the summ suite; the `--judge` options that name them."""
    return [option for name, answers in replies.items() for option in ("--judge", replay(answers, name, suite="summ"))]


def test_replayed_judge_scores_give_known_means_gates_and_item_outcomes(project, replay):
    judged_suite(project, 6)
    args = ["suites/summ.yaml", "--model", "replay:preds.jsonl", *judges(replay, judge1=FIRST_JUDGE)]
    result = project.runpytest(*args)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["summ*mymodel*judge_overall >= 6*6.5*PASS"])
    run = read_run(project.path)
    metrics = run.metrics
    assert metrics[("summ", "mymodel", "judge_overall")] == pytest.approx(6.5)  # (8 + 5) / 2, on the 1-10 scale
    assert metrics[("summ", "mymodel", "judge_accuracy")] == pytest.approx(6.0)
    items = {item["id"]: item for item in run.items}
    assert items["c1"]["status"] == "missed" and items["c1"]["failure_class"] == "judge_score_low"
    assert items["c1"]["metrics"]["judge_overall"] == pytest.approx(5.0)
    assert items["c2"]["failure_class"] == "wrong" and items["c2"]["judges"][0]["rationale"] == "Đủ ý, mạch lạc."
    result.stdout.fnmatch_lines(["*judge judge:judge1: accuracy=4, faithfulness=5, coherence=6*"])
    judged_suite(project, 7)
    failing = project.runpytest(*args)
    assert failing.ret == 1
    failing.stdout.fnmatch_lines(["summ*judge_overall >= 7*FAIL (threshold not met)"])


def test_an_unparsable_judge_reply_is_retried_once_then_a_judge_error_with_its_output(project, replay):
    judged_suite(project, 1)
    judge = judges(replay, judge1={"c1": "Bản tóm tắt này rất hay!", "c2": FIRST_JUDGE["c2"]})
    result = project.runpytest("suites/summ.yaml", "--model", "replay:preds.jsonl", *judge)
    result.stdout.fnmatch_lines(["*judge_error: no score for accuracy, faithfulness, coherence*", '*judge output: "Bản tóm tắt này rất hay!"*'])
    run = read_run(project.path)
    c1 = run.item("c1")
    verdict = c1["judges"][0]
    assert c1["status"] == "missed" and c1["failure_class"] == "judge_error"
    assert verdict["scores"] is None and verdict["raw_outputs"] == ["Bản tóm tắt này rất hay!"] * 2
    assert "judge_overall" not in c1["metrics"]  # no silent default
    assert run.metrics[("summ", "mymodel", "judge_overall")] == pytest.approx(8.0)  # c2 alone


def test_two_judges_report_their_agreement(project, replay):
    second = {"c1": '{"accuracy": 3, "faithfulness": 7, "coherence": 6}', "c2": '{"accuracy": 9, "faithfulness": 6, "coherence": 9}'}
    judged_suite(project, 1)
    args = ["suites/summ.yaml", "--model", "replay:preds.jsonl", *judges(replay, judge1=FIRST_JUDGE, judge2=second)]
    assert project.runpytest(*args).ret == 0
    run = read_run(project.path)
    agreement = run.results[0]["judge_agreement"]["judge:judge2"]
    assert agreement["accuracy"] == {"n": 2, "mean_abs_diff": 1.0, "spearman": pytest.approx(1.0)}
    assert agreement["faithfulness"]["mean_abs_diff"] == 1.0 and agreement["faithfulness"]["spearman"] == pytest.approx(-1.0)
    assert agreement["overall"]["n"] == 2
    assert "## Judge agreement (against the first judge)" in run.markdown


def test_judged_suites_under_xdist_give_the_same_summary(project, replay):
    judged_suite(project, 1)
    args = ["suites/summ.yaml", "--model", "replay:preds.jsonl", *judges(replay, judge1=FIRST_JUDGE)]
    assert project.runpytest(*args).ret == 0
    single = read_run(project.path).metrics
    assert project.runpytest_subprocess(*args, "-n", "2").ret == 0
    assert read_run(project.path).metrics == single


def test_judge_sections_over_their_token_budget_are_cut_and_recorded(project, replay):
    judged_suite(project, 1, max_tokens_per_section=12)
    project.runpytest("suites/summ.yaml", "--model", "replay:preds.jsonl", *judges(replay, judge1=FIRST_JUDGE))
    cuts = read_run(project.path).item("c1")["judges"][0]["truncated_sections"]  # replay counts characters as tokens
    assert [cut["section"] for cut in cuts] == ["Tham khảo", "Cần chấm"]  # "Bài một." fits in 12
    assert all(cut["tokens_after"] <= 12 < cut["tokens_before"] for cut in cuts)


def test_a_judge_that_cannot_load_errors_the_judged_items(project):
    judged_suite(project, 1)
    (project.path / "not-a-model").mkdir()
    result = project.runpytest("suites/summ.yaml", "--model", "replay:preds.jsonl", "--judge=not-a-model")
    assert result.ret == 1 and result.parseoutcomes()["failed"] == 2
    result.stdout.fnmatch_lines(["*ERROR judge_failed: judge model error: model 'not-a-model': cannot read*"])
    usage = project.runpytest("suites/summ.yaml", "--judge=./nowhere")
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    usage.stderr.fnmatch_lines(["*unknown model './nowhere'*"])
