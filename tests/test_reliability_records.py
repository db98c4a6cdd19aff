"""Bad records, end to end: each one is an item error naming its file, line and field, while every good
record of the same file is still scored; an empty selection and a 200k-character input are handled too."""

from __future__ import annotations

import json
import unicodedata

import pytest
from support import read_run, replay_rows, run_folders, write_jsonl, write_suite

QUESTION = "Thủ đô của Việt Nam?"
MC_LINES = [
    {"id": "01-0001", "question": "1 + 1 bằng mấy?", "choices": ["A. 2", "B. 3"], "answer": "A"},
    b'{"id": "01-0002", "question": "\xff\xfe"}',  # invalid UTF-8
    {"id": "01-0003", "question": "Hỏi?", "choices": ["A. x", "B. y"]},  # no answer
    {"id": "01-0004", "question": "Hỏi?", "choices": ["A. x", "B. y"], "answer": "E"},  # not an option
    {
        "id": "01-0005",
        "question": "Số lớn nhất?",
        "choices": [f"{label}. {n}" for n, label in enumerate("ABCDEF")],
        "answer": "F",
    },
    {
        "id": "01-0006",
        "question": unicodedata.normalize("NFD", QUESTION),
        "choices": ["A. Hà Nội", "B. Huế"],
        "answer": "A",
    },
    b'{"id": "01-0007", "question": "Hoi?", "choices": ["A. x", "B. y"], "ans',  # a write cut short
]
QA_RECORDS = [
    {
        "id": "q1",
        "context": "Hà Nội là thủ đô.",
        "question": "Thủ đô?",
        "answers": {"text": ["Hà Nội"], "answer_start": [0]},
    },
    {"id": "q2", "context": "  ", "question": "Thủ đô?", "answers": {"text": ["Hà Nội"], "answer_start": [0]}},
]
PREDICTIONS = {"01-0001": "A", "01-0005": "Đáp án: F", "01-0006": "A", "q1": "Hà Nội", "q2": "Hà Nội"}

METRICS = {"mc": ("multiple_choice", "accuracy"), "qa": ("extractive_qa", "exact_match")}


def suite(name: str, dataset: dict | None = None, prompt: dict | None = None) -> dict:
    """Suite `name` (mc or qa) on one metric; `dataset` and `prompt` add keys to those blocks."""
    task, metric = METRICS[name]
    return {
        "task": task,
        "dataset": dataset or {},
        "prompt": prompt or {},
        "metrics": [metric],
        "item_pass": {"metric": metric, "min": 1},
        "gates": [{"metric": metric, "min": 40}],
    }


pytestmark = pytest.mark.project(
    suites={"mc": suite("mc"), "qa": suite("qa")},
    records={
        "mc.jsonl": b"\n".join(
            line if isinstance(line, bytes) else json.dumps(line, ensure_ascii=False).encode() for line in MC_LINES
        ),
        "qa.jsonl": QA_RECORDS,
    },
    predictions={"preds": replay_rows(PREDICTIONS, model="m")},
)


def items_of(pytester: pytest.Pytester) -> dict[str, dict]:
    """The items of the project's one run, by id."""
    [run] = run_folders(pytester.path)
    return {item["id"]: item for item in run.items}


def test_bad_records_error_alone_and_every_good_record_is_scored(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # errors always fail the run
    assert result.parseoutcomes() == {"passed": 4, "failed": 5}
    items = items_of(project)
    problems = {
        "record-2": "mc.jsonl:2: invalid UTF-8 at byte",
        "01-0003": "mc.jsonl:3: record 01-0003: field 'answer': missing",
        "01-0004": "mc.jsonl:4: record 01-0004: field 'answer': 'E' is not one of the option labels A, B",
        "record-7": "mc.jsonl:7: invalid JSON (Unterminated string",
        "q2": "qa.jsonl:2: record q2: field 'context': empty",
    }
    for item_id, problem in problems.items():
        assert items[item_id]["status"] == "error" and items[item_id]["failure_class"] == "bad_record"
        assert problem in items[item_id]["message"]
        result.stdout.fnmatch_lines([f"*ERROR bad_record: *{problem}*"])
    six = items["01-0005"]
    assert (six["status"], six["answer"], six["references"]) == ("passed", "F", ["F"])
    nfd = items["01-0006"]
    assert nfd["status"] == "passed" and nfd["prompt"] == QUESTION  # scored as NFC, the original kept
    assert nfd["original_text"]["question"] == unicodedata.normalize("NFD", QUESTION)
    passed = sorted(key for key, item in items.items() if item["status"] == "passed")
    assert passed == ["01-0001", "01-0005", "01-0006", "q1"]
    mc = next(result for result in read_run(project.path).results if result["suite"] == "mc")
    assert mc["statuses"] == {"passed": 3, "missed": 0, "error": 4} and mc["metrics"]["accuracy"]["n"] == 3


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        ({"sampling": {"count": 5, "seed": 1, "stratify": "answerable", "proportions": {"NoAns": 1.0}}}, "(2 read)"),
        ({}, "(0 read)"),
    ],
    ids=["sampling-selects-nothing", "empty-file"],
)
def test_a_suite_with_nothing_to_evaluate_is_a_collection_error(project, sampling, expected):
    if not sampling:
        (project.path / "suites" / "data" / "qa.jsonl").write_text("\n", encoding="utf-8")
    path = write_suite(project.path, "qa", suite("qa", dataset=sampling))
    result = project.runpytest("suites/qa.yaml", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            f"*{path}: dataset *qa.jsonl has no records to evaluate {expected}*",
            "suites/qa.yaml*(suite not collected)*FAIL*",
        ]
    )


def test_a_200k_character_context_is_cut_to_the_budget_and_the_cut_recorded(project):
    """The declared budget policy shortens the context (the replay backend counts characters as tokens)."""
    words = [f"câu{n}" for n in range(40_000)]
    context = " ".join(words)
    assert len(context) > 200_000
    write_jsonl(project.path / "suites" / "data" / "qa.jsonl", [{**QA_RECORDS[0], "context": context}])
    budget = {"max_tokens": 4000, "field": "context", "policy": "head"}
    write_suite(project.path, "qa", suite("qa", prompt={"budget": budget}))
    result = project.runpytest("suites/qa.yaml", "--model", "replay:preds.jsonl")
    assert result.ret == 0
    item = items_of(project)["q1"]
    cut = item["truncation"]
    assert cut["field"] == "context" and cut["policy"] == "head" and cut["tokens_before"] > 200_000
    assert cut["tokens_after"] <= 4000 and 0 < cut["words_kept"] < cut["words_total"] == 40_000
    assert len(item["prompt"]) == cut["tokens_after"]
    assert item["prompt"].startswith(" ".join(words[: cut["words_kept"]]))
    assert read_run(project.path).results[0]["truncated"] == 1


def test_a_budget_no_cut_can_meet_is_an_item_error_that_says_what_to_raise(project):
    """The budgeted field has no words to cut (q1 has no title) and the prompt is already too long."""
    budget = {"max_tokens": 10, "field": "title", "policy": "proportional"}
    write_suite(project.path, "qa", suite("qa", prompt={"budget": budget}))
    result = project.runpytest("suites/qa.yaml", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    item = items_of(project)["q1"]
    assert item["status"] == "error" and item["failure_class"] == "bad_prompt"
    assert item["message"].endswith(
        "the prompt has 25 tokens even with 'title' empty; raise prompt.budget.max_tokens (now 10)"
    )


def test_ids_with_brackets_colons_and_spaces_are_re_selected_by_node_id_and_a_newline_id_is_refused(project, replay):
    """`pytest @file` reads one node id per line: an id holding a line break would split in two, so it
    is refused; `::`, `[`, `]` and spaces stay selectable."""
    odd = ["01-a::b", "01-x[1]", "01-có dấu cách"]
    records = [{**MC_LINES[0], "id": item_id} for item_id in [*odd, "01-y\nsuites/qa.yaml"]]
    write_jsonl(project.path / "suites" / "data" / "mc.jsonl", records)
    model = replay(dict.fromkeys(odd, "A"))
    first = project.runpytest("suites/mc.yaml", "--model", model, "-rA")
    assert first.parseoutcomes() == {"passed": 3, "failed": 1}
    bad = items_of(project)["record-4"]
    assert bad["status"] == "error" and "mc.jsonl:4: record record-4: field 'id': holds the unprintable character U+000A" in bad["message"]
    node_ids = [f"suites/mc.yaml::mc[preds:{item_id}]" for item_id in odd]
    (project.path / "again.txt").write_text("\n".join(node_ids) + "\n", encoding="utf-8")
    again = project.runpytest("@again.txt", "--model", model, "-v")
    assert again.parseoutcomes() == {"passed": 3}
    assert [line.split(" PASSED")[0] for line in again.stdout.lines if " PASSED " in line] == node_ids


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"id": "01-0001", "prediction": "A"}\n{"id": "01-0005", "prediction": "F"}\n\n{"id": "01-0006", "predic',
         "preds.jsonl:4: invalid JSON (Unterminated string starting at column 19)"),
        (b"", "preds.jsonl holds no predictions"),
        (b'{"id": ["01-0001"], "prediction": "A"}\n', "preds.jsonl:1: field 'id': expected text or a whole number, got list"),
        (b'{"id": "01-0001", "prediction": "A", "suite": ["mc"]}\n', "preds.jsonl:1: field 'suite': expected text, got list"),
        (b'{"id": "01-0001", "prediction": "A", "model": {"n": 1}}\n', "preds.jsonl:1: field 'model': expected text, got dict"),
        (b'{"id": "01-0001", "prediction": "\xff"}\n', "preds.jsonl:1: invalid UTF-8 at byte 33"),
        (b'{"id": "01-0001", "prediction": 1}\n', "preds.jsonl:1: field 'prediction': expected text, got int"),
        (b'{"id": "01-0001", "prediction": "A"}\n{"id": "01-0001", "prediction": "B"}\n', "preds.jsonl:2: second prediction for id '01-0001'"),
        (b'[1, 2]\n', "preds.jsonl:1: expected a JSON object, got list"),
        (b'{"id": "01-0001", "prediction": "A\\udc00"}\n', "preds.jsonl:1: field 'prediction': a lone UTF-16 surrogate (\\udc00)"),
        ('{"id": "01-0001", "prediction": "A"}\n'.encode("utf-32"), "preds.jsonl is UTF-32 text (it starts with a byte-order mark); save it as UTF-8"),
    ],
    ids=["truncated-last-line", "empty", "id-list", "suite-list", "model-dict", "bad-utf8", "prediction-int", "duplicate", "not-object", "lone-surrogate", "utf-32"],
)
def test_a_broken_replay_file_is_a_usage_error_naming_its_line_and_field(project, replay, content, problem):
    result = project.runpytest("suites/mc.yaml", "--model", replay(content))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in result.stderr.str() and "line 1 column" not in result.stderr.str()


def test_a_replay_file_with_a_byte_order_mark_and_a_line_separator_in_a_prediction_is_read(project, replay):
    """U+2028 is a line break to str.splitlines but not to JSON Lines: the prediction keeps it."""
    lines = [{"id": "01-0001", "prediction": "A"}, {"id": "01-0005", "prediction": "Đáp án:\u2028F"}]
    text = "\n".join(json.dumps(record, ensure_ascii=False) for record in lines)
    model = replay(b"\xef\xbb\xbf" + text.encode())
    write_jsonl(project.path / "suites" / "data" / "mc.jsonl", [MC_LINES[0], MC_LINES[4]])
    assert project.runpytest("suites/mc.yaml", "--model", model).parseoutcomes() == {"passed": 2}
    assert items_of(project)["01-0005"]["output"] == "Đáp án:\u2028F"


def test_a_lone_surrogate_in_a_record_is_an_item_error_and_the_report_is_written(project):
    """It used to pass the loader and stop the report writer (UnicodeEncodeError: an internal error)."""
    bad = b'{"id": "01-0002", "question": "H\\ud800i?", "choices": ["A. x", "B. y"], "answer": "A"}'
    (project.path / "suites" / "data" / "mc.jsonl").write_bytes(json.dumps(MC_LINES[0]).encode() + b"\n" + bad + b"\n")
    result = project.runpytest("suites/mc.yaml", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED and result.parseoutcomes() == {"passed": 1, "failed": 1}
    problem = items_of(project)["01-0002"]["message"]
    assert "mc.jsonl:2: field 'question': a lone UTF-16 surrogate (\\ud800) is not text" in problem


def test_whole_float_ids_in_data_and_replay_files_are_the_integers_ids(project, replay):
    """pandas writes an integer id column with a gap as 1.0, 2.0: the record and the prediction still meet."""
    records = [{**MC_LINES[0], "id": 1.0}, {**MC_LINES[0], "id": 2}]
    write_jsonl(project.path / "suites" / "data" / "mc.jsonl", records)
    model = replay([{"id": 1, "prediction": "A"}, {"id": 2.0, "prediction": "A"}])
    result = project.runpytest("suites/mc.yaml", "--model", model, "-v")
    assert result.ret == 0 and result.parseoutcomes() == {"passed": 2}
    result.stdout.fnmatch_lines(["*mc.yaml::mc[[]preds:1[]] PASSED*", "*mc.yaml::mc[[]preds:2[]] PASSED*"])
