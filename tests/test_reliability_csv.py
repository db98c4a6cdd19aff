"""CSV files as spreadsheets and old tools save them, and as they break: every line ending, byte-order marks,
short rows, long fields, stray quotes and bytes that are not text. A row the parser rejects is an item error
naming file, row and line while the rest is read; only a file whose next row cannot be found stops the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import load_data_with_little_memory

from vnllmtest.loaders import BadRecord, DataOptions, Item, load_data
from vnllmtest.suite import load_suite

from test_reliability_data import refusal

HEADER = "category,instruct,input,output\r\n"


def csv_suite(tmp_path: Path, text: str | bytes) -> Path:
    """An instruction suite (adapter vtsnlp) over rows.csv holding `text`."""
    data = tmp_path / "rows.csv"
    data.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    path = tmp_path / "instr.yaml"
    path.write_text(
        "vnllmtest: 1\nname: instr\ntask: instruction\ndataset: {adapter: vtsnlp, source: rows.csv}\n"
        'prompt: {template: "{{ instruct }}"}\nmetrics: [rouge_l]\nitem_pass: {metric: rouge_l, min: 0.2}\n',
        encoding="utf-8",
    )
    return path


def entries_of(path: Path) -> list[Item | BadRecord]:
    return load_data(load_suite(path), DataOptions()).entries


def test_a_csv_with_a_byte_order_mark_reads_every_row(tmp_path):
    path = csv_suite(tmp_path, b"\xef\xbb\xbf" + (HEADER + "open_qa,Hỏi gì?,,Đáp.\r\nqa,Hai?,,Hai.\r\n").encode())
    entries = entries_of(path)
    assert [entry.tags["category"] for entry in entries] == ["open_qa", "qa"]
    assert all(isinstance(entry, Item) for entry in entries)


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n", "mixed"], ids=["cr-old-mac", "lf", "crlf", "mixed"])
def test_every_line_ending_reads_every_row_and_keeps_line_breaks_inside_quotes(tmp_path, ending):
    """Old Mac Excel ends lines with CR alone; a quoted cell keeps its own line break whatever it is."""
    ends = ["\r", "\n", "\r\n", "\r", "\n"] if ending == "mixed" else [ending] * 5
    cell = f"Dòng một{ends[1]}dòng hai"
    lines = ["category,instruct,input,output", f'qa,"{cell}",,Một.', "qa,Hai?,,Hai.", "", "qa,Ba?,,Ba."]
    entries = entries_of(csv_suite(tmp_path, "".join(line + end for line, end in zip(lines, ends, strict=True))))
    assert [entry.fields["instruct"] for entry in entries] == [cell, "Hai?", "Ba?"]
    places = [entry.origin.split("rows.csv ")[1] for entry in entries]
    assert places == ["row 1 (line 2)", "row 2 (line 4)", "row 3 (line 6)"]


def test_blank_lines_above_the_header_are_skipped(tmp_path):
    entries = entries_of(csv_suite(tmp_path, "\r\n\r\n" + HEADER + "qa,Hỏi?,,Đáp.\r\n"))
    assert [(entry.id[:3], entry.origin.split("rows.csv ")[1]) for entry in entries] == [("qa-", "row 1 (line 4)")]


def test_a_long_csv_field_is_data_and_a_row_past_the_bound_names_file_and_row(tmp_path):
    document = "Tài liệu dài. " * 20_000  # 280,000 characters: more than csv's default 131,072
    path = csv_suite(tmp_path, HEADER + f'summarize,"Tóm tắt:\n{document}",,Tóm tắt.\r\n')
    [item] = entries_of(path)
    assert len(item.fields["instruct"]) > 280_000
    half = "x" * (32 * 2**20)  # two lines under the bound, one field (and row) over it
    path = csv_suite(tmp_path, HEADER + "qa,Hỏi?,,Đáp.\r\n" + f'qa,"{half}\n{half}",,Đáp.\r\n')
    message = refusal(path)
    assert f"{tmp_path / 'rows.csv'} row 2 (line 3): a row longer than 67,108,864 characters" in message
    assert len(message) < 1000


def test_a_csv_line_past_the_bound_is_refused_without_holding_it(tmp_path):
    """A 100 MiB line (no line end: a corrupt file) stops at the bound: run with 200 MiB of address space beyond
    the loaded code, where reading the line whole (bytes, then text, then csv's own copy) needs far more."""
    suite = csv_suite(tmp_path, b"")
    path = tmp_path / "rows.csv"
    with path.open("wb") as handle:
        handle.write((HEADER + "qa,Hỏi?,,Đáp.\r\n").encode())
        handle.write(b"qa," + b"x" * (100 * 2**20) + b"\r\n")
    printed = load_data_with_little_memory(suite, "entries")
    assert printed.endswith(f"{path} row 2 (line 3): a row longer than 67,108,864 characters")


def test_a_row_the_parser_rejects_is_an_item_error_and_the_rest_is_read(tmp_path):
    """A stray quote, a NUL or a byte that is not UTF-8 spoils one row, not the suite."""
    body = (
        b"qa,M\xe1\xbb\x99t?,,M\xe1\xbb\x99t.\r\n"
        b'qa,"H\xe1\xbb\x8fi"?,,\xc4\x90\xc3\xa1p.\r\n'  # text after a closing quote
        b"qa,Ba?,,B\x00a.\r\n"
        b"qa,B\xff\xfen?,,B\xe1\xbb\x91n.\r\n"  # Latin-1 bytes in a UTF-8 file
        b"qa,N\xc4\x83m?,,N\xc4\x83m.\r\n"
    )
    entries = entries_of(csv_suite(tmp_path, HEADER.encode() + body))
    assert [type(entry) for entry in entries] == [Item, BadRecord, BadRecord, BadRecord, Item]
    problems = [(entry.id, entry.origin.split("rows.csv ")[1], entry.problem) for entry in entries[1:4]]
    assert problems == [
        ("record-2", "row 2 (line 3)", "not readable as CSV (',' expected after '\"')"),
        ("record-3", "row 3 (line 4)", "field 'output': holds a NUL character; a CSV file is text (UTF-16 without a BOM?)"),
        ("record-4", "row 4 (line 5)", "field 'instruct': invalid UTF-8 at byte 1 of the field"),
    ]


def test_a_quote_that_never_closes_stops_the_file_naming_where_it_opened(tmp_path):
    """Everything after the quote is one field: reading on would lose the rest of the file without a word."""
    body = 'qa,Hỏi?,,Đáp.\r\nqa,"Hỏi không đóng ngoặc,,Đáp.\r\nqa,Ba?,,Ba.\r\n'
    message = refusal(csv_suite(tmp_path, HEADER + body))
    assert f"{tmp_path / 'rows.csv'} row 2 (line 3): a quoted field is never closed (unexpected end of data)" in message


def test_a_short_row_is_padded_with_empty_fields_and_a_long_row_is_an_item_error(tmp_path):
    """Spreadsheets leave out empty trailing cells; more fields than the header would shift columns."""
    header = "category,instruct,output,input,id\r\n"
    body = "qa,Một?,Một.\r\nqa,Hai, ba?,Hai.,,x\r\nqa,Bốn?\r\n\r\nqa,Năm?,Năm.,,05\r\n"
    entries = entries_of(csv_suite(tmp_path, header + body))
    assert [type(entry) for entry in entries] == [Item, BadRecord, BadRecord, Item]
    assert entries[0].fields["input"] == "" and entries[0].id.startswith("qa-") and entries[3].id == "05"
    assert entries[1].origin.endswith("rows.csv row 2 (line 3)") and entries[1].problem == "6 fields, the header has 5"
    assert entries[2].origin.endswith("rows.csv row 3 (line 4)") and entries[2].problem.endswith("field 'output': empty")


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
        ("category,instruct,input,output,input\r\nqa,Hỏi?,,Đáp.,x\r\n", "the header names column 'input' twice"),
        ("", "has no header line"),
        (HEADER, "has no records to evaluate (0 read)"),
        ("\ufeffcategory,instruct\r\n".encode("utf-16"), "is UTF-16 text"),
        ("category,instruct\r\nqa,Hỏi?\r\n".encode("utf-16-le"), "header: column 1: holds a NUL character"),
        (b"category,instr\xfcct,input,output\r\n", "header: column 2: invalid UTF-8 at byte 5 of the field"),
        ('category,"instruct\r\n', "header: a quoted field is never closed"),
    ],
    ids=["duplicate-header", "empty-file", "header-only", "utf-16", "utf-16-no-bom", "latin-1-header", "open-quote-header"],
)
def test_csv_files_that_cannot_be_read_as_a_table_are_refused(tmp_path, text, problem):
    message = refusal(csv_suite(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'instr.yaml'}: ") and str(tmp_path / "rows.csv") in message and problem in message
