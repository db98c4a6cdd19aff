"""Hostile data, read from real files: paths that leave their folder, URLs, encodings, JSON that breaks its
reader, and ids that break node ids (CSV: test_reliability_csv.py). Each is refused with an error naming the
suite or data file, the record (line or row) and the field, and nothing outside the allowed folders is read."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from vnllmtest.loaders import BadRecord, DataError, DataOptions, Item, load_data
from vnllmtest.suite import load_suite

from support import load_data_with_little_memory, read_run, write_jsonl

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


def test_dataset_local_follows_the_links_the_user_placed_in_the_data_dir_and_stays_inside_as_written(tmp_path):
    """The user builds --data-dir: it may itself be a link, and links inside it (to a big disk, to the Hugging
    Face cache) are followed. Only the path the suite writes is confined: no `..` out of it, no absolute path
    elsewhere. `..` is taken as written, so `cache/../x` is the data dir's x, never the link target's neighbour."""
    secret = secret_file(tmp_path)
    elsewhere = write_jsonl(tmp_path / "big-disk" / "valid.jsonl", [GOOD])
    write_jsonl(tmp_path / "mc.jsonl", [{**GOOD, "question": SECRET}])  # where cache/.. leads on disk
    real = tmp_path / "mounted" / "datasets"
    (real / "vmlu").mkdir(parents=True)
    (real / "vmlu" / "valid.jsonl").symlink_to(elsewhere)
    (real / "cache").symlink_to(elsewhere.parent, target_is_directory=True)
    (real / "loop.jsonl").symlink_to(real / "loop.jsonl")
    write_jsonl(real / "mc.jsonl", [{**GOOD, "id": "01-0009"}])
    (tmp_path / "data").symlink_to(real, target_is_directory=True)
    folder, options = tmp_path / "suites", DataOptions(data_dir=tmp_path / "data")

    def questions(local: str) -> list[str]:
        entries = load_data(load_suite(suite_file(folder, local=local)), options).entries
        return [f"{entry.id} {entry.fields['question']}" for entry in entries]

    assert questions("vmlu/valid.jsonl") == questions("cache/valid.jsonl") == [f"01-0001 {GOOD['question']}"]
    assert questions("cache/../mc.jsonl") == [f"01-0009 {GOOD['question']}"]
    for local in ["../../private/secret.jsonl", str(secret), "cache/../../../private/secret.jsonl"]:
        escape = suite_file(folder, local=local)
        message = refusal(escape, options)
        assert message.startswith(f"{escape}: dataset.local: '{local}' leads to {secret}, outside --data-dir {real}")
        assert "pass --allow-outside-data" in message and SECRET not in message
    allowed = DataOptions(data_dir=real, allow_outside=True)
    assert load_data(load_suite(escape), allowed).entries[0].fields["question"] == SECRET
    assert "'loop.jsonl' is a symlink loop" in refusal(suite_file(folder, local="loop.jsonl"), options)


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


def project_over(source: str, records: dict[str, list[dict]] | None = None) -> pytest.MarkDecorator:
    """A project whose multiple-choice suite mc reads `source` (with suites/data/FILE of `records`), and
    preds.jsonl answering A to 01-0001."""
    suite = {"task": "multiple_choice", "dataset": {"source": source}}
    return pytest.mark.project(suites={"mc": suite}, records=records, predictions={"preds": {"01-0001": "A"}})


@project_over("../private/secret.jsonl")
def test_a_run_never_reads_a_file_outside_and_says_how_to_allow_it(project):
    """End to end: a collection error (exit 2) naming suite file, key and resolved path; the secret is in
    no output and no report."""
    secret = secret_file(project.path)
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*mc.yaml: dataset.source: '../private/secret.jsonl' resolves to {secret}*--allow-outside-data*"])
    written = "".join(p.read_text("utf-8") for p in (project.path / "reports").rglob("*") if p.is_file())
    assert SECRET not in result.stdout.str() + written
    allowed = project.runpytest("suites", "--model", "replay:preds.jsonl", "--allow-outside-data")
    assert allowed.ret == 0 and allowed.parseoutcomes()["passed"] == 1


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
    printed = load_data_with_little_memory(
        suite, "[f'{e.origin}: {e.problem}' if hasattr(e, 'problem') else e.id for e in entries]"
    )
    assert printed == f"['01-0001', '{path}:2: a line longer than 67,108,864 bytes', '01-0003']"


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
        (float("nan"), "field 'id': expected text or a whole number, got the float nan"),
        (float("inf"), "field 'id': expected text or a whole number, got the float inf"),
        (1.5, "field 'id': expected text or a whole number, got the float 1.5"),
        (1e300, "field 'id': 301 characters; an id has at most 200"),
        (True, "field 'id': expected text or a whole number, got bool"),
        ("x" * 5000, "field 'id': 5000 characters; an id has at most 200"),
    ],
    ids=[
        "newline", "carriage-return", "line-separator", "next-line", "tab", "list", "dict",
        "nan", "infinity", "fraction", "huge-float", "bool", "long",
    ],
)
def test_an_id_that_cannot_name_a_test_case_is_a_bad_record(tmp_path, given, problem):
    record = {**GOOD, "id": given}
    entries = load_data(load_suite(jsonl_suite(tmp_path, [line(GOOD), line(record)])), DataOptions()).entries
    bad = entries[1]
    assert isinstance(bad, BadRecord) and bad.id == "record-2" and bad.origin.endswith("mc.jsonl:2")
    assert problem in bad.problem and len(bad.problem) < 300


def test_a_float_id_that_is_a_whole_number_is_that_number(tmp_path):
    """pandas turns an integer id column with a gap into floats (1.0, 2.0, NaN), and Parquet keeps them:
    whole floats are the integers' ids, as in a JSONL file; the gap is a bad record naming the field."""
    import pyarrow
    import pyarrow.parquet

    rows = [{**GOOD, "id": value} for value in (1.0, 2.0, float("nan"), -0.0)]
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "mc.parquet")
    entries = load_data(load_suite(suite_file(tmp_path, source="mc.parquet")), DataOptions()).entries
    assert [entry.id for entry in entries] == ["1", "2", "record-3", "0"]
    assert "row 2" in entries[2].origin and "field 'id': expected text or a whole number, got the float nan" in entries[2].problem
    jsonl = load_data(load_suite(jsonl_suite(tmp_path, [b'{"id": 7.0, "question": "Q", "choices": ["A. 1", "B. 2"], "answer": "A"}'])), DataOptions())
    assert [entry.id for entry in jsonl.entries] == ["7"]


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


@project_over("data", records={"a.jsonl": [GOOD]})
def test_a_data_file_whose_name_is_not_utf8_is_named_and_the_report_written(project):
    """A file saved under a Latin-1 name: its path used to reach items.jsonl and stop the report writer
    (UnicodeEncodeError, an INTERNALERROR with no report)."""
    odd = Path(os.fsdecode(bytes(project.path / "suites" / "data") + b"/b\xe9.jsonl"))
    write_jsonl(odd, [{**GOOD, "id": "01-0002"}])
    result = project.runpytest("suites", "--model", "replay:preds.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*mc.yaml: dataset.source: *data/b\\xe9.jsonl: the name is not UTF-8 text*rename it*"])
    assert (read_run(project.path).path / "report.html").is_file()
