"""VMLU leaderboard submission (`pytest --submission`): the test split's records have no answers; every id is
written once to a `id,answer` CSV beside the report, with what could not be answered counted and named."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from vnllmtest.loaders import DataOptions, Item, load_data
from vnllmtest.loaders.base import BadRecord
from vnllmtest.outcomes import ItemResult, RunScope
from vnllmtest.runner import Prediction
from vnllmtest.scoring import score
from vnllmtest.submission import plan_submissions, submission_texts
from vnllmtest.suite import SuiteError, load_suite

from support import REPO, make_project, read_run, write_jsonl, write_replay

# Test-layout records of our own: `SS-NNNN` ids, no `answer` (one has an NFD question, one five options).
TEST_SPLIT = [
    {"id": "03-0007", "question": "Vua nào lên ngôi năm 1802?",
     "choices": ["A. Gia Long", "B. Minh Mạng", "C. Tự Đức", "D. Quang Trung"]},
    {"id": "01-0012", "question": unicodedata.normalize("NFD", "Thủ đô của nước Việt Nam là thành phố nào?"),
     "choices": ["A. Huế", "B. Hà Nội", "C. Đà Nẵng", "D. Cần Thơ"]},
    {"id": "58-0003", "question": "Biển báo hình tròn viền đỏ thường là loại biển gì?",
     "choices": ["A. Biển cấm", "B. Biển chỉ dẫn", "C. Biển nguy hiểm", "D. Biển hiệu lệnh", "E. Biển phụ"]},
    {"id": "22-0100", "question": "Hiến pháp là văn bản có hiệu lực pháp lý như thế nào?",
     "choices": ["A. Cao nhất", "B. Thấp nhất", "C. Ngang luật"]},
    {"id": "41-0001", "question": "Số nguyên tố nhỏ nhất là số nào?", "choices": ["A. 0", "B. 1", "C. 2", "D. 3"]},
    {"id": "41-0002", "question": "Nước sôi ở bao nhiêu độ C ở áp suất thường?",
     "choices": ["A. 90", "B. 100", "C. 110", "D. 120"]},
]
REPLIES = {  # 41-0002 has no reply: the replay backend makes that item an error
    "03-0007": "A",
    "01-0012": "Đáp án: B. Hà Nội",
    "58-0003": "E",
    "22-0100": "Tôi không chắc chắn về câu này.",
    "41-0001": "A hoặc C",
}
VALIDATION = [{"id": "01-0001", "question": "Hai cộng hai bằng mấy?", "choices": ["A. 3", "B. 4"], "answer": "B"}]


def _vmlu_suite(root: Path, **submission: object) -> Path:
    """The repository's vmlu.yaml, its data in `root`/suites/data and its submission block as given."""
    text = (REPO / "suites" / "vmlu.yaml").read_text(encoding="utf-8")
    head, _, tail = text.partition("submission:\n")
    block = "".join(f"  {key}: {value!r}\n".replace("'", '"') for key, value in submission.items())
    lines = tail.splitlines()
    block_end = next(number for number, line in enumerate(lines) if not line.startswith("  "))
    kept = "".join(line + "\n" for line in lines[block_end:])
    text = head + ("submission:\n" + block if submission else "") + kept
    text = text.replace("source: hf://tridm/VMLU", "source: data/valid.jsonl")
    path = root / "suites" / "vmlu.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    write_jsonl(root / "suites" / "data" / "valid.jsonl", VALIDATION)
    write_jsonl(root / "suites" / "data" / "test.jsonl", TEST_SPLIT)
    return path


def _rows(run, name: str = "submission-vmlu-preds.csv") -> list[list[str]]:
    raw = (run.path / name).read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw  # UTF-8 without a BOM, one \n per row
    return list(csv.reader(io.StringIO(raw.decode("utf-8"))))


def test_a_submission_run_writes_every_id_once_and_counts_what_it_could_not_answer(pytester):
    root = make_project(pytester.path)
    _vmlu_suite(root, local="vmlu/test.jsonl")
    (root / "private" / "vmlu").mkdir(parents=True)
    (root / "suites" / "data" / "test.jsonl").rename(root / "private" / "vmlu" / "test.jsonl")
    (root / "suites" / "qa.yaml").write_text(
        (REPO / "suites" / "visquad2.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    model = write_replay(root, REPLIES)
    result = pytester.runpytest_subprocess("suites", "--submission", "--data-dir", "private", "--model", model)
    run = read_run(root)
    assert _rows(run) == [
        ["id", "answer"], ["01-0012", "B"], ["03-0007", "A"], ["22-0100", ""], ["41-0001", ""], ["41-0002", ""],
        ["58-0003", "E"],
    ]
    [written] = run.manifest["submissions"]
    assert {key: written[key] for key in ("questions", "answered", "unanswered", "errors", "planned", "ready")} == {
        "questions": 6, "answered": 3, "unanswered": 2, "errors": 1, "planned": 6, "ready": False,
    }
    assert written["letters"].startswith("generate") and written["unanswered_written"] == ""
    assert written["note"] == "1 question errored"
    assert result.ret == 1  # the errored item fails the run; the file is still written, marked not ready
    result.stdout.fnmatch_lines([
        "*not run, no submission: block: visquad2*",
        "*vmlu × preds: reports/*/submission-vmlu-preds.csv: 6 questions, 3 answered, 2 unanswered, 1 error"
        " (left blank); letters from generate; NOT ready: 1 question errored",
    ])
    [group] = run.results
    assert group["metrics"] == {} and group["gates"] == []
    assert run.summary["gates_verdict"] == "Gates not passed: 1 item errored."
    assert run.summary["run"]["submission"] is True
    assert group["statuses"] == {"passed": 3, "missed": 2, "error": 1}
    assert group["failure_classes"] == {"extraction_failed": 1, "ambiguous": 1, "model_error": 1}
    assert run.manifest["suites"]["vmlu"]["data_origin"].endswith("private/vmlu/test.jsonl")
    assert all(item["references"] == [] for item in run.items)
    assert "## Leaderboard submission" in run.markdown and "| Dataset | Metric |" not in run.markdown
    assert "submission-vmlu-preds.csv" in run.html and "NOT ready: 1 question errored" in run.html
    assert "letters from generate" in run.html and 'id="metrics"' not in run.html and 'id="charts"' not in run.html
    assert "95% bootstrap" not in run.markdown


def test_a_letter_for_unanswered_questions_and_a_complete_file_ready_to_submit(pytester):
    root = make_project(pytester.path, suites={"qa": {"task": "extractive_qa"}}, records={"qa.jsonl": []})
    _vmlu_suite(root, sample="data/test.jsonl", unanswered="A")
    model = write_replay(root, {**REPLIES, "41-0002": "Chọn B"})
    result = pytester.runpytest_subprocess("suites", "--submission", "--data", "sample", "--model", model, "-n", "2")
    assert result.ret == 0
    run = read_run(root)
    assert run.summary["gates_verdict"] == "No gates: a --submission run has hidden answers, so nothing is scored."
    assert dict(_rows(run)[1:]) == {
        "01-0012": "B", "03-0007": "A", "22-0100": "A", "41-0001": "A", "41-0002": "B", "58-0003": "E",
    }
    [written] = run.manifest["submissions"]
    assert (written["answered"], written["unanswered"], written["ready"]) == (4, 2, True)
    result.stdout.fnmatch_lines(["*not run, no submission: block: qa*", "*6 questions, 4 answered, 2 unanswered ('A'"
                                 " written); letters from generate; ready to submit"])


def test_a_partial_submission_run_says_the_file_is_not_complete(pytester):
    root = make_project(pytester.path)
    _vmlu_suite(root, sample="data/test.jsonl")
    model = write_replay(root, REPLIES)
    pytester.runpytest_subprocess("suites", "--submission", "--data", "sample", "--model", model, "--limit", "2")
    [written] = read_run(root).manifest["submissions"]
    assert written["questions"] == 2 and not written["ready"] and "2 of 6 items ran; --limit 2" in written["note"]


def test_log_likelihood_letters_from_a_real_model(pytester, tiny_model_dir):
    root = make_project(pytester.path)
    _vmlu_suite(root, sample="data/test.jsonl", letters="loglikelihood")
    result = pytester.runpytest_subprocess("suites", "--submission", "--data", "sample", "--model", str(tiny_model_dir))
    assert result.ret == 0
    run = read_run(root)
    rows = _rows(run, f"submission-vmlu-{run.results[0]['model']}.csv")
    labels = {record["id"]: record["choices"] for record in TEST_SPLIT}
    assert [row[0] for row in rows[1:]] == sorted(labels)
    for item_id, letter in rows[1:]:  # random weights still choose an option of the question, never another
        assert letter in {choice[0] for choice in labels[item_id]}
    assert run.manifest["submissions"][0]["letters"].startswith("loglikelihood")
    assert all(item["mode"] == "loglikelihood" for item in run.items)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_submission_needs_a_suite_that_declares_one(pytester, workers):
    make_project(pytester.path, samples=True)
    result = pytester.runpytest_subprocess("suites/visquad2.yaml", "suites/vims.yaml", "--submission", *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = "ERROR: --submission: no suite collected declares a submission: block (vims, visquad2)*"
    result.stdout.fnmatch_lines([expected])


def test_submission_refuses_a_baseline_and_is_never_one(pytester):
    root = make_project(pytester.path)
    _vmlu_suite(root, sample="data/test.jsonl")
    model = write_replay(root, REPLIES)
    pytester.runpytest_subprocess("suites", "--submission", "--data", "sample", "--model", model)
    run = read_run(root)
    result = pytester.runpytest_subprocess("suites", "--data", "sample", "--model", model, "--baseline", str(run.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*summary.json: a --submission run (its answers are hidden): nothing was scored*"])
    result = pytester.runpytest_subprocess("suites/vmlu.yaml", "--submission", "--baseline", "reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--submission answers questions whose answers are hidden*--baseline*"])


def test_the_adapter_reads_test_records_without_answers_only_when_they_are_hidden(tmp_path):
    path = _vmlu_suite(tmp_path, local="vmlu/test.jsonl")
    unlabelled = {"id": "09-0001", "question": "Hỏi?", "choices": ["x", "y"]}
    records = [*TEST_SPLIT[:2], {**TEST_SPLIT[2], "answer": ""}, unlabelled]
    write_jsonl(tmp_path / "suites" / "data" / "vmlu" / "test.jsonl", records)
    suite = load_suite(path)
    hidden = suite.__class__(suite.spec.as_submission(), suite.path, suite.sha256)
    options = DataOptions(data_dir=tmp_path / "suites" / "data")
    entries = {entry.id: entry for entry in load_data(hidden, options).entries}
    assert all(entries[key].references == () for key in ("03-0007", "01-0012", "58-0003"))
    assert entries["01-0012"].fields["question"] == unicodedata.normalize("NFC", TEST_SPLIT[1]["question"])
    assert isinstance(entries["09-0001"], BadRecord) and "field 'choices'" in entries["09-0001"].problem
    visible = suite.__class__(suite.spec.model_copy(update={"dataset": hidden.spec.dataset.model_copy(
        update={"options": {}})}), suite.path, suite.sha256)
    problems = [e.problem for e in load_data(visible, DataOptions(data_dir=tmp_path / "suites" / "data")).entries
                if isinstance(e, BadRecord)]
    assert sum("field 'answer': missing" in problem for problem in problems) == 2


def test_the_submission_view_runs_every_question_of_the_hidden_split_with_no_gates(tmp_path):
    spec = load_suite(REPO / "suites" / "vmlu.yaml").spec
    view = spec.as_submission()
    where = (view.dataset.source, view.dataset.split, view.dataset.local)
    assert where == ("hf://tridm/VMLU", "test", "vmlu/test.jsonl")
    assert view.dataset.sampling is None and view.gates == [] and view.reported_metrics == []
    assert view.scoring.mode == "generate" and view.answers_hidden and not spec.answers_hidden
    local_only = spec.model_copy(update={"submission": spec.submission.model_copy(update={"split": None})})
    assert local_only.as_submission().dataset.source is None  # never the validation split under another name
    not_hub = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"source": "data/valid.jsonl"})})
    with pytest.raises(ValueError, match="submission.split names a split of a hub dataset"):
        not_hub.as_submission()


def test_submission_data_problems_name_the_submission_block(pytester):
    root = make_project(pytester.path)
    _vmlu_suite(root, split="test", sample="data/test.jsonl")  # its dataset.source is no hub dataset
    result = pytester.runpytest_subprocess("suites", "--submission", "--data", "sample")
    result.stdout.fnmatch_lines(["*suites/vmlu.yaml: submission.split names a split of a hub dataset*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED
    _vmlu_suite(root, sample="data/missing.jsonl")
    result = pytester.runpytest_subprocess("suites", "--submission", "--data", "sample")
    result.stdout.fnmatch_lines(["*not found at *data/missing.jsonl (from submission.sample)*"])
    _vmlu_suite(root, sample="data/test.jsonl")
    result = pytester.runpytest_subprocess("suites", "--submission")
    result.stdout.fnmatch_lines(["*has no data for --data full. To fix: run the bundled sample with --data sample*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error


@pytest.mark.parametrize(
    "change, problem",
    [
        ("submission: {letters: both}\n", "submission.letters: Input should be 'generate' or 'loglikelihood'"),
        ("submission: {local: t.jsonl, unanswered: AB}\n", "submission.unanswered: String should match pattern"),
        ("submission: {local: t.jsonl, unanswered: D}\n", "submission.unanswered: String should match pattern"),
        ("submission: {letters: generate}\n", "give at least one of 'split', 'local' or 'sample'"),
        ("dataset: {adapter: vmlu, source: v.jsonl, options: {answers: hidden}}\n", "declare a submission: block"),
        ("task: extractive_qa\nsubmission: {local: t.jsonl}\n", "submission: is for multiple-choice suites"),
        ("dataset: {adapter: vmlu, source: v.jsonl, options: {answers: hidden}}\nsubmission: {local: t.jsonl}\n",
         "is set by `pytest --submission` alone"),
        ("prompt: {template: '{{ question }}', fewshot: {k: 2, target: '{{ answer }}'}}\n"
         "submission: {local: t.jsonl}\n",
         "submission: a few-shot prompt takes its examples' answers from the data"),
    ],
)
def test_submission_blocks_that_cannot_work_are_suite_errors(tmp_path, change, problem):
    base = "vnllmtest: 1\nname: mc\ntask: multiple_choice\ndataset: {adapter: vmlu, source: v.jsonl}\n"
    base += "prompt: {template: '{{ question }}'}\nmetrics: [accuracy]\nitem_pass: {metric: accuracy, min: 1}\n"
    if change.startswith("task:"):
        base = base.replace("task: multiple_choice\n", "").replace("[accuracy]", "[f1]")
        base = base.replace("accuracy, min", "f1, min")
    if change.startswith("dataset:"):
        base = base.replace("dataset: {adapter: vmlu, source: v.jsonl}\n", "")
    if change.startswith("prompt:"):
        base = base.replace("prompt: {template: '{{ question }}'}\n", "")
    path = tmp_path / "mc.yaml"
    path.write_text(base + change, encoding="utf-8")
    with pytest.raises(SuiteError) as raised:
        load_suite(path)
    assert problem in str(raised.value) and str(path) in str(raised.value)


@pytest.mark.parametrize(
    "reply, status, answer, failure",
    [
        ("C", "passed", "C", None),
        ("Đáp án đúng là D.", "passed", "D", None),
        ("", "missed", None, "extraction_failed"),
        ("A hoặc C", "missed", None, "ambiguous"),
        ("Không phải A, mà là B", "passed", "B", None),
    ],
)
def test_a_hidden_answer_question_passes_when_an_option_was_chosen(reply, status, answer, failure):
    view = load_suite(REPO / "suites" / "vmlu.yaml").spec.as_submission()
    item = Item("07-0042", {"question": "Sông nào dài nhất?"}, (), ("A", "B", "C", "D"))
    outcome = score(view, item, Prediction("generate", reply, None, "stop", 3))
    assert (outcome.status, outcome.answer, outcome.failure_class, outcome.metrics) == (status, answer, failure, {})


def test_a_tie_or_unreadable_log_probabilities_give_no_letter():
    view = load_suite(REPO / "suites" / "vmlu.yaml").spec.as_submission()
    view = view.model_copy(update={"scoring": view.scoring.model_copy(update={"mode": "loglikelihood"})})
    item = Item("07-0042", {"question": "?"}, (), ("A", "B", "C"))
    tie = score(view, item, Prediction("loglikelihood", "", {"A": -1.0, "B": -1.0, "C": -3.0}, "stop", 0))
    assert (tie.status, tie.answer, tie.failure_class) == ("missed", None, "ambiguous")
    broken = score(view, item, Prediction("loglikelihood", "", {}, "stop", 0))
    assert (broken.status, broken.failure_class) == ("error", "unscored")
    chosen = score(view, item, Prediction("loglikelihood", "", {"A": -2.0, "B": -0.5, "C": -3.0}, "stop", 0))
    assert (chosen.status, chosen.answer) == ("passed", "B")


def test_the_bundled_test_layout_sample_has_no_answers_and_leaderboard_ids():
    lines = (REPO / "suites" / "data" / "vmlu_test_sample.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) >= 10 and all("answer" not in record for record in records)
    assert all(re.fullmatch(r"\d{2}-\d{4}", record["id"]) for record in records)


def test_a_model_none_of_whose_questions_ran_gets_no_file_and_says_so(tmp_path):
    view = load_suite(REPO / "suites" / "vmlu.yaml").spec.as_submission()
    ran = [ItemResult("vmlu", "a", item_id, "passed", answer="B") for item_id in ("01-0002", "01-0001")]
    scope = RunScope({"vmlu": 2}, stopped=True)
    first, second = plan_submissions(ran, {"vmlu": view}, ["a", "b/ c"], scope)
    assert (first.file, first.ready, second.file, second.ready) == ("submission-vmlu-a.csv", True, "", False)
    assert second.describe() == "vmlu × b/ c: no file, 0 of 2 items ran; the run stopped early"
    assert submission_texts(ran, [first, second]) == {"submission-vmlu-a.csv": "id,answer\n01-0001,B\n01-0002,B\n"}
    assert first.to_json()["letters"] == "generate" and "read from the model's reply" in first.to_json()["letters_from"]


def test_a_submission_the_disk_refuses_is_never_ready(tmp_path):
    import resource

    _vmlu_suite(tmp_path, sample="data/test.jsonl")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    write_replay(tmp_path, {key: f"B {'chữ ' * 15_000}" for key in REPLIES}, "long")
    command = [sys.executable, "-m", "pytest", "suites", "--submission", "--data", "sample"]
    command += ["--model", "replay:long.jsonl"]
    done = subprocess.run(  # files may not grow past 100 kB: items.jsonl cannot be written, summary.json can
        [*command, "-p", "no:cacheprovider", "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)),
    )
    assert done.returncode == 3, done.stdout[-3000:]
    assert "NOT ready: the report could not be written" in done.stdout
    [run] = list((tmp_path / "reports").iterdir())
    assert sorted(path.name for path in run.iterdir()) == ["summary.json"]
    [written] = json.loads((run / "summary.json").read_text("utf-8"))["manifest"]["submissions"]
    assert (written["ready"], written["note"]) == (False, "the report could not be written")
