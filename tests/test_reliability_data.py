"""Hostile data, read from real files: paths that leave their folder, URLs, encodings, CSV and JSON
that break their parsers, and ids that break node ids. Each is refused with an error naming the suite
or data file, the record (line or row) and the field, and nothing outside the allowed folders is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from vnllmtest.loaders import BadRecord, DataError, DataOptions, Item, load_data
from vnllmtest.suite import load_suite

from support import INNER_RUN_INI, write_jsonl

GOOD = {"id": "01-0001", "question": "1 + 1 bằng mấy?", "choices": ["A. 2", "B. 3"], "answer": "A"}
SECRET = "mật khẩu: hunter2"
SUITE = """vnllmtest: 1
name: mc
task: multiple_choice
dataset:
{dataset}
prompt: {{template: "{{{{ question }}}}"}}
metrics: [accuracy]
item_pass: {{metric: accuracy, min: 1}}
"""


def suite_file(folder: Path, **dataset: str) -> Path:
    """A multiple-choice suite in `folder` whose dataset block holds `dataset` (adapter vmlu)."""
    lines = "\n".join(f"  {key}: {json.dumps(value)}" for key, value in {"adapter": "vmlu", **dataset}.items())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mc.yaml"
    path.write_text(SUITE.format(dataset=lines), encoding="utf-8")
    return path


def secret_file(tmp_path: Path) -> Path:
    """A JSONL file outside the suite's folder whose text must never reach a prompt."""
    return write_jsonl(tmp_path / "private" / "secret.jsonl", [{**GOOD, "question": SECRET}])


def refusal(path: Path, options: DataOptions = DataOptions()) -> str:
    with pytest.raises(DataError) as caught:
        load_data(load_suite(path), options)
    return str(caught.value)


# --- paths: a suite reads inside its own folder, dataset.local inside --data-dir -----------------------


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink-file", "symlink-folder", "sample-dotdot"])
def test_a_path_outside_the_suite_folder_is_refused_unless_allowed(tmp_path, how):
    secret = secret_file(tmp_path)
    folder = tmp_path / "shared-suites"
    options = DataOptions()
    if how == "dotdot":
        path = suite_file(folder, source="data/../../private/secret.jsonl")
    elif how == "absolute":
        path = suite_file(folder, source=str(secret))
    elif how == "symlink-file":
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "mc.jsonl").symlink_to(secret)
        path = suite_file(folder, source="data/mc.jsonl")
    elif how == "symlink-folder":
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "parts").symlink_to(secret.parent, target_is_directory=True)
        path = suite_file(folder, source="data/parts")
    else:
        path = suite_file(folder, sample="../private/secret.jsonl")
        options = DataOptions(mode="sample")
    message = refusal(path, options)
    key = "dataset.sample" if how == "sample-dotdot" else "dataset.source"
    assert message.startswith(f"{path}: {key}: ")
    target = secret.parent if how == "symlink-folder" else secret
    assert f"resolves to {target}, outside the suite's folder {folder}" in message
    assert "pass --allow-outside-data" in message and SECRET not in message
    allowed = load_data(load_suite(path), DataOptions(mode=options.mode, allow_outside=True))
    assert [item.fields["question"] for item in allowed.entries] == [SECRET]


def test_a_file_symlinked_out_of_a_data_folder_is_refused(tmp_path):
    """The folder itself is inside; one file in it links out."""
    secret = secret_file(tmp_path)
    folder = tmp_path / "suites"
    write_jsonl(folder / "data" / "parts" / "a.jsonl", [GOOD])
    (folder / "data" / "parts" / "b.jsonl").symlink_to(secret)
    message = refusal(suite_file(folder, source="data/parts"))
    assert f"{folder / 'data' / 'parts' / 'b.jsonl'} resolves to {secret}, outside the suite's folder" in message


def test_a_vims_article_symlinked_out_of_its_cluster_is_refused(tmp_path):
    secret = tmp_path / "private" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("Content:\n" + SECRET, encoding="utf-8")
    folder = tmp_path / "suites"
    cluster = folder / "ViMs" / "original" / "Cluster_001"
    (cluster / "original").mkdir(parents=True)
    (cluster / "original" / "1.txt").symlink_to(secret)
    path = folder / "vims.yaml"
    path.write_text(
        SUITE.replace("multiple_choice", "summarization").replace("accuracy", "rouge_l").format(
            dataset="  adapter: vims\n  source: ViMs"
        ),
        encoding="utf-8",
    )
    message = refusal(path)
    assert f"resolves to {secret}, outside the suite's folder {folder}" in message and SECRET not in message


def test_dataset_local_stays_inside_the_data_dir_which_may_itself_be_a_link(tmp_path):
    """The --data-dir the user names is trusted (even through a symlink); the suite's `local` path and
    links inside the data dir are confined to it."""
    secret = secret_file(tmp_path)
    real = tmp_path / "mounted" / "datasets"
    write_jsonl(real / "vmlu" / "valid.jsonl", [GOOD])
    (tmp_path / "data").symlink_to(real, target_is_directory=True)
    folder = tmp_path / "suites"
    inside = load_data(load_suite(suite_file(folder, local="vmlu/valid.jsonl")), DataOptions(data_dir=tmp_path / "data"))
    assert [entry.id for entry in inside.entries] == ["01-0001"]
    escape = suite_file(folder, local="../../private/secret.jsonl")
    message = refusal(escape, DataOptions(data_dir=tmp_path / "data"))
    assert message.startswith(f"{escape}: dataset.local: '../../private/secret.jsonl'") and f"resolves to {secret}, outside --data-dir {real}" in message
    (real / "linked.jsonl").symlink_to(secret)
    linked = suite_file(folder, local="linked.jsonl")
    assert "outside --data-dir" in refusal(linked, DataOptions(data_dir=real))
    assert load_data(load_suite(linked), DataOptions(data_dir=real, allow_outside=True)).entries[0].fields["question"] == SECRET


@pytest.mark.parametrize("key", ["source", "local", "sample"])
@pytest.mark.parametrize("url", ["https://example.com/vmlu.jsonl", "s3://bucket/vmlu.jsonl", "file:///etc/passwd"])
def test_a_url_is_not_a_data_source(tmp_path, key, url):
    write_jsonl(tmp_path / "suites" / "mc.jsonl", [GOOD])
    dataset = {key: url} if key == "source" else {key: url, "source": "mc.jsonl"}
    path = suite_file(tmp_path / "suites", **dataset)
    message = refusal(path)
    assert message.startswith(f"{path}: dataset.{key}: '{url}' is a URL") and "downloads nothing" in message
    assert "hf://" in message and "--data-dir" in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data/a\x00b.jsonl", "holds a NUL character"),
        ("d/" * 3000 + "x.jsonl", "cannot be used as a path (File name too long)"),
        ("loop.jsonl", "is a symlink loop"),
        ("fifo.jsonl", "is not a regular file"),
        ("empty", "folder holds no data files"),
    ],
    ids=["nul", "too-long", "symlink-loop", "fifo", "empty-folder"],
)
def test_unusable_paths_are_named_without_hanging_or_a_traceback(tmp_path, source, expected):
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    os.mkfifo(folder / "fifo.jsonl")  # opening it would block for ever
    (folder / "empty" / "notes.jsonl").mkdir(parents=True)  # a folder named like a data file is skipped
    message = refusal(suite_file(folder, source=source))
    assert expected in message and len(message) < 1000


def test_a_run_never_reads_a_file_outside_and_says_how_to_allow_it(pytester):
    """End to end: a collection error (exit 2) naming suite file, key and resolved path; the secret is in
    no output and no report."""
    pytester.makeini(INNER_RUN_INI)
    secret = secret_file(pytester.path)
    suite_file(pytester.path / "suites", source="../private/secret.jsonl")
    write_jsonl(pytester.path / "preds.jsonl", [{"id": "01-0001", "prediction": "A"}])
    result = pytester.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*mc.yaml: dataset.source: '../private/secret.jsonl' resolves to {secret}*--allow-outside-data*"])
    written = "".join(p.read_text("utf-8") for p in (pytester.path / "reports").rglob("*") if p.is_file())
    assert SECRET not in result.stdout.str() + written
    allowed = pytester.runpytest("suites", "--model", "replay:preds.jsonl", "--allow-outside-data")
    assert allowed.ret == 0 and allowed.parseoutcomes()["passed"] == 1


# --- CSV ---------------------------------------------------------------------------------------------


def csv_suite(tmp_path: Path, text: str | bytes) -> Path:
    data = tmp_path / "rows.csv"
    data.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    path = tmp_path / "instr.yaml"
    path.write_text(
        "vnllmtest: 1\nname: instr\ntask: instruction\ndataset: {adapter: vtsnlp, source: rows.csv}\n"
        'prompt: {template: "{{ instruct }}"}\nmetrics: [rouge_l]\nitem_pass: {metric: rouge_l, min: 0.2}\n',
        encoding="utf-8",
    )
    return path


HEADER = "category,instruct,input,output\r\n"


def test_a_csv_with_a_byte_order_mark_reads_every_row(tmp_path):
    path = csv_suite(tmp_path, b"\xef\xbb\xbf" + (HEADER + "open_qa,Hỏi gì?,,Đáp.\r\nqa,Hai?,,Hai.\r\n").encode())
    entries = load_data(load_suite(path), DataOptions()).entries
    assert [entry.tags["category"] for entry in entries] == ["open_qa", "qa"]
    assert all(isinstance(entry, Item) for entry in entries)


def test_a_long_csv_field_is_data_and_one_past_the_bound_names_file_and_row(tmp_path):
    document = "Tài liệu dài. " * 20_000  # 280,000 characters: more than csv's default 131,072
    path = csv_suite(tmp_path, HEADER + f'summarize,"Tóm tắt:\n{document}",,Tóm tắt.\r\n')
    [item] = load_data(load_suite(path), DataOptions()).entries
    assert len(item.fields["instruct"]) > 280_000
    huge = "x" * (64 * 2**20 + 1)
    path = csv_suite(tmp_path, HEADER + "qa,Hỏi?,,Đáp.\r\n" + f'qa,"{huge}",,Đáp.\r\n')
    message = refusal(path)
    assert f"{tmp_path / 'rows.csv'} row 2 (line 3): a field longer than 67,108,864 characters" in message
    assert len(message) < 1000


@pytest.mark.parametrize(
    ("body", "where", "problem"),
    [
        ('qa,Hỏi?,,Đáp.\r\nqa,"Hỏi không đóng ngoặc,,Đáp.\r\nqa,Ba?,,Ba.\r\n', "row 2 (line 3)", "unexpected end of data"),
        ('qa,"Hỏi"?,,Đáp.\r\n', "row 1 (line 2)", "',' expected after '\"'"),
        ("qa,Hỏi?,,Đáp.\r\nqa,H\x00i,,Đáp.\r\n", "row 2 (line 3)", "NUL character"),
    ],
    ids=["unterminated-quote", "text-after-quote", "nul-byte"],
)
def test_a_csv_that_breaks_its_parser_names_file_and_row(tmp_path, body, where, problem):
    message = refusal(csv_suite(tmp_path, HEADER + body))
    assert f"{tmp_path / 'rows.csv'} {where}" in message and problem in message


def test_csv_rows_that_do_not_fit_the_header(tmp_path):
    """More fields than the header would shift columns silently; fewer would leave fields unset."""
    body = "qa,Một?,,Một.\r\nqa,Hai, ba?,,Hai.\r\nqa,Bốn?\r\n\r\nqa,Năm?,,Năm.\r\n"
    entries = load_data(load_suite(csv_suite(tmp_path, HEADER + body)), DataOptions()).entries
    assert [isinstance(entry, Item) for entry in entries] == [True, False, False, True]
    assert entries[1].origin.endswith("rows.csv row 2 (line 3)") and "5 fields, the header has 4" in entries[1].problem
    assert entries[2].origin.endswith("rows.csv row 3 (line 4)") and "2 fields, the header has 4" in entries[2].problem


def test_repeated_content_with_another_answer_is_dropped_and_noted(tmp_path):
    """Content-derived ids (VTSNLP) make an exact repeat the same item; a repeat whose answer differs used to
    vanish without a word."""
    body = "qa,Hỏi?,,Đáp một.\r\nqa,Hỏi?,,Đáp một.\r\nqa,Hỏi?,,Đáp hai.\r\nqa,Khác?,,Ba.\r\n"
    data = load_data(load_suite(csv_suite(tmp_path, HEADER + body)), DataOptions())
    assert [item.references for item in data.entries] == [("Đáp một.",), ("Ba.",)]
    assert data.notes == (
        f"1 record(s) repeat an earlier record's content with another reference (first: {tmp_path / 'rows.csv'} "
        "row 3 (line 4)); each was dropped and the earlier one kept",
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("category,instruct,input,output,input\r\nqa,Hỏi?,,Đáp.,x\r\n", "header names column 'input' twice"),
        ("", "has no header line"),
        (HEADER, "has no records to evaluate (0 read)"),
        ("\ufeffcategory,instruct\r\n".encode("utf-16"), "is UTF-16 text"),
    ],
    ids=["duplicate-header", "empty-file", "header-only", "utf-16"],
)
def test_csv_files_that_cannot_be_read_as_a_table_are_refused(tmp_path, text, problem):
    message = refusal(csv_suite(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'instr.yaml'}: ") and str(tmp_path / "rows.csv") in message and problem in message


# --- JSON and JSONL ----------------------------------------------------------------------------------


def jsonl_suite(tmp_path: Path, lines: list[bytes], name: str = "mc.jsonl") -> Path:
    (tmp_path / name).write_bytes(b"\n".join(lines) + b"\n")
    return suite_file(tmp_path, source=name)


def line(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"id": "01-0002", "question": "Q", "choices": ["A. 1", "B. 2"], "answer": ' + b"1" * 5000 + b"}", "invalid JSON (a number of more than 4300 digits)"),
        (b"[" * 200_000 + b"]" * 200_000, "invalid JSON (nested more than"),
        (b'{"id": "01-0002", "question": "Q", "choices": ["A. 1", "B. 2"], "answer": "A", "answer": "B"}', "field 'answer': given twice"),
        (b'{"id": "01-0002", "question": "Q\\ud800", "choices": ["A. 1", "B. 2"], "answer": "A"}', "field 'question': a lone UTF-16 surrogate (\\ud800)"),
        (b'{"id": "01-\\udfff", "question": "Q", "choices": ["A. 1", "B. 2"], "answer": "A"}', "field 'id': a lone UTF-16 surrogate (\\udfff)"),
    ],
    ids=["huge-integer", "deep-nesting", "duplicate-key", "lone-surrogate", "lone-surrogate-id"],
)
def test_jsonl_lines_that_break_the_json_reader_are_bad_records(tmp_path, raw, problem):
    """A lone surrogate used to pass the loader and stop the report writer (UnicodeEncodeError)."""
    entries = load_data(load_suite(jsonl_suite(tmp_path, [line(GOOD), raw, line({**GOOD, "id": "01-0003"})])), DataOptions()).entries
    assert [type(entry) for entry in entries] == [Item, BadRecord, Item]
    readable = "given twice" in problem or "'question'" in problem  # parsed: the record names its own id
    assert entries[1].id == ("01-0002" if readable else "record-2")
    assert entries[1].origin == f"{tmp_path / 'mc.jsonl'}:2" and problem in entries[1].problem
    assert len(entries[1].problem) < 300


def test_a_jsonl_line_past_the_bound_is_skipped_without_holding_it(tmp_path):
    """A 100 MiB line is a bad record and the next line is read: the reader holds at most the 64 MiB bound
    (run with 200 MiB of address space beyond the loaded code; reading the line whole needs over 300)."""
    path = tmp_path / "mc.jsonl"
    with path.open("wb") as handle:
        handle.write(line(GOOD) + b"\n")
        handle.write(b'{"id": "01-0002", "question": "' + b"x" * (100 * 2**20) + b'"}\n')
        handle.write(line({**GOOD, "id": "01-0003"}) + b"\n")
    suite = suite_file(tmp_path, source="mc.jsonl")
    script = (
        "import pathlib, resource\n"
        "from vnllmtest.loaders import DataOptions, load_data; from vnllmtest.suite import load_suite\n"
        "size = int(pathlib.Path('/proc/self/status').read_text().split('VmSize:')[1].split()[0]) << 10\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + (200 << 20),) * 2)\n"
        f"entries = load_data(load_suite(pathlib.Path({str(suite)!r})), DataOptions()).entries\n"
        "print([f'{e.origin}: {e.problem}' if hasattr(e, 'problem') else e.id for e in entries])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"['01-0001', '{path}:2: a line longer than 67,108,864 bytes', '01-0003']"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested more than"),
        (b'\xff\xfe[\x00]\x00', "is UTF-16 text"),
        (b"\xef\xbb\xbf" + json.dumps([GOOD]).encode(), None),
    ],
    ids=["deep-nesting", "utf-16", "bom"],
)
def test_whole_json_files(tmp_path, raw, problem):
    (tmp_path / "mc.json").write_bytes(raw)
    path = suite_file(tmp_path, source="mc.json")
    if problem is None:
        assert [entry.id for entry in load_data(load_suite(path), DataOptions()).entries] == ["01-0001"]
    else:
        assert problem in refusal(path)


def test_a_jsonl_file_with_a_byte_order_mark_reads_its_first_line(tmp_path):
    entries = load_data(load_suite(jsonl_suite(tmp_path, [b"\xef\xbb\xbf" + line(GOOD)])), DataOptions()).entries
    assert [type(entry) for entry in entries] == [Item]


def test_a_parquet_file_that_is_really_text_is_named(tmp_path):
    (tmp_path / "mc.parquet").write_text("id,question\n1,Hỏi?\n", encoding="utf-8")
    message = refusal(suite_file(tmp_path, source="mc.parquet"))
    assert f"{tmp_path / 'mc.parquet'}: not a readable Parquet file" in message


# --- ids ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("01-0002\nsuites/other.yaml", "field 'id': holds the unprintable character U+000A"),
        ("01\r0002", "field 'id': holds the unprintable character U+000D"),
        ("01\u20280002", "field 'id': holds the unprintable character U+2028"),
        ("01\x850002", "field 'id': holds the unprintable character U+0085"),
        ("01\t0002", "field 'id': holds the unprintable character U+0009"),
        (["01-0002"], "field 'id': expected text or a whole number, got list"),
        ({"n": 2}, "field 'id': expected text or a whole number, got dict"),
        (float("nan"), "field 'id': expected text or a whole number, got float"),
        (True, "field 'id': expected text or a whole number, got bool"),
        ("x" * 5000, "field 'id': 5000 characters; an id has at most 200"),
    ],
    ids=["newline", "carriage-return", "line-separator", "next-line", "tab", "list", "dict", "nan", "bool", "long"],
)
def test_an_id_that_cannot_name_a_test_case_is_a_bad_record(tmp_path, given, problem):
    record = {**GOOD, "id": given}
    entries = load_data(load_suite(jsonl_suite(tmp_path, [line(GOOD), line(record)])), DataOptions()).entries
    bad = entries[1]
    assert isinstance(bad, BadRecord) and bad.id == "record-2" and bad.origin.endswith("mc.jsonl:2")
    assert problem in bad.problem and len(bad.problem) < 300


def test_ids_that_differ_only_in_unicode_normalisation_are_duplicates(tmp_path):
    nfd = unicodedata.normalize("NFD", "Hòa-1")
    path = jsonl_suite(tmp_path, [line({**GOOD, "id": "Hòa-1"}), line({**GOOD, "id": nfd})])
    assert "duplicate id 'Hòa-1'" in refusal(path)


def test_record_values_in_messages_are_bounded(tmp_path):
    """A megabyte answer or option is named by its start and end, never copied whole into the message."""
    huge = "x" * 2**20
    records = [{**GOOD, "answer": huge}, {**GOOD, "id": "01-0002", "choices": [huge, "B. 2"]}]
    entries = load_data(load_suite(jsonl_suite(tmp_path, [line(r) for r in records])), DataOptions()).entries
    assert "field 'answer': 'xxxx" in entries[0].problem and "characters ...]" in entries[1].problem
    assert all(isinstance(entry, BadRecord) and len(entry.problem) < 300 for entry in entries)
