"""Dataset loading: adapters on our bundled samples, bad records, duplicates, deterministic sampling."""

from __future__ import annotations

import random
import shutil
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from vnllmtest.loaders import BadRecord, DataError, DataOptions, Item, load_data, sampling
from vnllmtest.dataset_spec import Sampling
from vnllmtest.suite import load_suite

from support import REPO, write_jsonl

SAMPLE = DataOptions(mode="sample")


def suite(name: str):
    return load_suite(REPO / "suites" / f"{name}.yaml")


def test_vmlu_sample_loads_with_labels_from_each_record():
    data = load_data(suite("vmlu"), SAMPLE)
    items = [e for e in data.entries if isinstance(e, Item)]
    assert len(items) == len(data.entries) == 30
    assert Counter(len(item.labels) for item in items) == {4: 25, 3: 3, 5: 2}
    first = items[0]
    assert first.id == "01-0001" and first.tags == {"subject": "01", "category": "STEM"}
    assert first.fields["choices"][0].startswith("A. ")
    assert first.references[0] in first.labels
    assert {item.tags["category"] for item in items} == {"STEM", "Social Science", "Humanities", "Other"}


def test_visquad_sample_has_unanswerable_questions():
    items = load_data(suite("visquad2"), SAMPLE).entries
    assert len(items) == 30
    unanswerable = [item for item in items if not item.references]
    assert len(unanswerable) == 3 and all(item.tags == {"answerable": "NoAns"} for item in unanswerable)
    assert any(len(item.references) == 2 for item in items)


def test_vims_sample_folder_rebuilds_clusters_and_selected_sentences():
    items = load_data(suite("vims"), SAMPLE).entries
    assert len(items) == 10
    cluster = items[0]
    assert cluster.id == "Cluster_001"
    assert len(cluster.fields["documents"]) == 3 and len(cluster.references) == 2
    assert all(doc["title"] and doc["content"] for doc in cluster.fields["documents"])
    bodies = " ".join(doc["content"] for doc in cluster.fields["documents"])
    assert cluster.fields["selected_sentences"] and all(s in bodies for s in cluster.fields["selected_sentences"])


def test_vtsnlp_sample_csv_has_eleven_categories_and_content_ids():
    items = load_data(suite("vtsnlp"), SAMPLE).entries
    assert len(items) == 11
    assert set(Counter(item.tags["category"] for item in items).values()) == {1}
    assert len({item.id for item in items}) == 11
    assert all(item.id.startswith(item.tags["category"] + "-") for item in items)


def test_full_mode_applies_stratified_sampling(tmp_path):
    """The vtsnlp suite samples 10 per category; with our 3 per category (tests/data/vtsnlp_rows.csv)
    that is all of them, and a count of 2 per category gives 22."""
    data_dir = tmp_path / "data"
    (data_dir / "vtsnlp").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "data" / "vtsnlp_rows.csv", data_dir / "vtsnlp" / "rows.csv")
    text = (REPO / "suites" / "vtsnlp.yaml").read_text(encoding="utf-8")
    text = text.replace("instruct_general_dataset.parquet", "rows.csv").replace("count: 10", "count: 2")
    path = tmp_path / "vtsnlp.yaml"
    path.write_text(text.replace("sample: data/vtsnlp_sample.csv", "sample: x.csv"), encoding="utf-8")
    data = load_data(load_suite(path), DataOptions(data_dir=data_dir))
    assert len(data.entries) == 22 and data.total == 33
    assert set(Counter(item.tags["category"] for item in data.entries).values()) == {2}


def test_sampling_is_independent_of_record_order():
    items = load_data(suite("vmlu"), SAMPLE).entries
    plan = Sampling(fraction=0.3, seed=7)
    chosen = {item.id for item in sampling.sample(items, plan)[0]}
    shuffled = list(items)
    random.Random(1).shuffle(shuffled)
    assert {item.id for item in sampling.sample(shuffled, plan)[0]} == chosen
    assert len(chosen) == 9
    assert {item.id for item in sampling.sample(items, Sampling(fraction=0.3, seed=8))[0]} != chosen


@pytest.mark.parametrize(
    "plan",
    [
        Sampling(count=7, seed=3),
        Sampling(count=2, seed=5, stratify="category"),
        Sampling(count=12, seed=1, stratify="category", proportions={"STEM": 0.5, "Humanities": 0.25, "Art": 0.25}),
    ],
    ids=["count", "per-stratum", "proportions"],
)
def test_streamed_sampling_chooses_what_sampling_the_whole_list_chooses(plan):
    items = load_data(suite("vmlu"), SAMPLE).entries
    chosen, notes = sampling.sample(items, plan)
    streamed, streamed_notes, read = sampling.sample_stream(iter(items), plan)
    assert [item.id for item in streamed] == [item.id for item in chosen] and read == len(items)
    assert streamed_notes == notes
    with pytest.raises(ValueError):
        sampling.sample_stream(iter(items), Sampling(fraction=0.5, seed=1))


def test_limit_takes_a_deterministic_subset_in_source_order():
    items = load_data(suite("vmlu"), DataOptions(mode="sample", limit=5)).entries
    again = load_data(suite("vmlu"), DataOptions(mode="sample", limit=5)).entries
    assert [i.id for i in items] == [i.id for i in again] and len(items) == 5
    assert [i.id for i in items] == sorted(i.id for i in items)


def _mc_suite(tmp_path: Path, records: list[dict] | None = None, raw: str | None = None) -> Path:
    data = tmp_path / "mc.jsonl"
    if raw is not None:
        data.write_text(raw, encoding="utf-8")
    else:
        write_jsonl(data, records)
    text = (REPO / "suites" / "vmlu.yaml").read_text(encoding="utf-8")
    text = text.replace("source: hf://tridm/VMLU", "source: mc.jsonl").replace("  sampling: {fraction: 0.1, seed: 42}\n", "")
    path = tmp_path / "mc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = {"id": "01-0001", "question": "Câu hỏi?", "choices": ["A. Một", "B. Hai"], "answer": "B"}


def test_bad_records_become_item_errors_naming_file_line_and_field(tmp_path):
    lines = [
        '{"id": "01-0001", "question": "Hỏi?", "choices": ["A. x", "B. y"], "answer": "A"}',
        '{"id": "01-0002", "question": "Hỏi?", "choices": ["A. x", "B. y"]',
        '{"id": "01-0003", "choices": ["A. x", "B. y"], "answer": "A"}',
        '{"id": "01-0004", "question": "Hỏi?", "choices": ["A. x", "B. y"], "answer": "E"}',
        '{"id": "01-0005", "question": "Hỏi?", "choices": ["x", "y"], "answer": "A"}',
        '{"id": "01-0006", "question": "Hỏi?", "choices": ["A. 1", "B. 2", "C. 3", "D. 4", "E. 5", "F. 6"], "answer": "F"}',
    ]
    path = _mc_suite(tmp_path, raw="\n".join(lines) + "\n")
    entries = {e.id: e for e in load_data(load_suite(path), DataOptions()).entries}
    assert isinstance(entries["01-0001"], Item) and isinstance(entries["01-0006"], Item)
    assert entries["01-0006"].labels == ("A", "B", "C", "D", "E", "F")
    bad = {key: e for key, e in entries.items() if isinstance(e, BadRecord)}
    assert set(bad) == {"record-2", "01-0003", "01-0004", "01-0005"}
    assert bad["record-2"].origin.endswith("mc.jsonl:2") and "invalid JSON" in bad["record-2"].problem
    assert "field 'question': missing" in bad["01-0003"].problem
    assert "field 'answer': 'E' is not one of the option labels A, B" in bad["01-0004"].problem
    assert "field 'choices': option 1 does not start with a label" in bad["01-0005"].problem


def test_invalid_utf8_line_is_a_bad_record(tmp_path):
    data = tmp_path / "mc.jsonl"
    path = _mc_suite(tmp_path, [GOOD])
    data.write_bytes(data.read_bytes() + b'{"id": "01-0002", "question": "\xff"}\n')
    entries = load_data(load_suite(path), DataOptions()).entries
    assert isinstance(entries[1], BadRecord) and "invalid UTF-8" in entries[1].problem


def test_duplicate_ids_name_both_occurrences(tmp_path):
    path = _mc_suite(tmp_path, [GOOD, GOOD])
    with pytest.raises(DataError, match=r"duplicate id '01-0001': .*mc.jsonl:1 and .*mc.jsonl:2"):
        load_data(load_suite(path), DataOptions())


def test_text_is_nfc_normalised_on_load_and_the_original_kept(tmp_path):
    original = unicodedata.normalize("NFD", "Thủ đô của Việt Nam?")
    path = _mc_suite(tmp_path, [{**GOOD, "question": original}])
    [item] = load_data(load_suite(path), DataOptions()).entries
    assert item.fields["question"] == "Thủ đô của Việt Nam?" != original
    assert unicodedata.is_normalized("NFC", item.fields["question"])
    assert item.original_text == {"question": original}


def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataError) as caught:
        load_data(suite("vmlu"), DataOptions(data_dir=tmp_path))
    message = str(caught.value)
    assert f"not found at {tmp_path / 'vmlu' / 'valid.jsonl'}" in message
    assert "--data-dir DIR" in message and "--data sample" in message


def test_hub_source_without_network_is_a_clear_error(monkeypatch, tmp_path):
    """The real `datasets` path, offline (tests/conftest.py) with an empty cache."""
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(DataError, match=r"hf://tridm/VMLU.*To fix: put a local copy at DIR/vmlu/valid.jsonl"):
        load_data(suite("vmlu"), DataOptions())


def test_data_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VNLLMTEST_DATA_DIR", str(tmp_path))
    assert DataOptions.from_environment("full", None, None).data_dir == tmp_path
    assert DataOptions.from_environment("full", "/elsewhere", None).data_dir == Path("/elsewhere")


def _visquad_sampled(tmp_path: Path, sampling_line: str) -> tuple[list, tuple[str, ...]]:
    """The bundled ViQuAD sample (27 answerable, 3 not) read as full data with another sampling plan."""
    text = (REPO / "suites" / "visquad2.yaml").read_text(encoding="utf-8")
    start = text.index("  sampling:")
    text = text[:start] + sampling_line + text[text.index("\n", start):]
    shutil.copy(REPO / "suites" / "data" / "visquad2_sample.jsonl", tmp_path)
    text = text.replace("source: hf://taidng/UIT-ViQuAD2.0", "source: visquad2_sample.jsonl")
    path = tmp_path / "visquad2.yaml"
    path.write_text(text.replace("sample: data/", "sample: x/"), encoding="utf-8")
    data = load_data(load_suite(path), DataOptions())
    return data.entries, data.notes


def test_proportions_share_out_a_total_count_between_strata(tmp_path):
    line = "  sampling: {count: 10, seed: 42, stratify: answerable, proportions: {HasAns: 0.9, NoAns: 0.1}}"
    entries, notes = _visquad_sampled(tmp_path, line)
    assert Counter(item.tags["answerable"] for item in entries) == {"HasAns": 9, "NoAns": 1}
    assert notes == ()


def test_a_stratum_smaller_than_its_share_is_taken_whole_and_reported(tmp_path):
    line = "  sampling: {count: 20, seed: 42, stratify: answerable, proportions: {HasAns: 0.5, NoAns: 0.5}}"
    entries, notes = _visquad_sampled(tmp_path, line)
    assert Counter(item.tags["answerable"] for item in entries) == {"HasAns": 10, "NoAns": 3}
    assert notes == ("answerable=NoAns: wanted 10, the data has 3 (all taken)",)


def test_a_folder_source_reads_every_data_file_in_it(tmp_path):
    folder = tmp_path / "parts"
    write_jsonl(folder / "a.jsonl", [GOOD])
    write_jsonl(folder / "b.jsonl", [{**GOOD, "id": "02-0001"}])
    (folder / "notes.txt").write_text("not data", encoding="utf-8")
    path = _mc_suite(tmp_path, [GOOD])
    path.write_text(path.read_text(encoding="utf-8").replace("source: mc.jsonl", "source: parts"), encoding="utf-8")
    entries = load_data(load_suite(path), DataOptions()).entries
    assert [entry.id for entry in entries] == ["01-0001", "02-0001"]
    assert entries[1].origin.endswith("b.jsonl:1")


def test_vims_documents_mode_gives_every_full_article_as_a_passage(tmp_path):
    text = (REPO / "suites" / "vims.yaml").read_text(encoding="utf-8").replace("{input: s3}", "{input: documents}")
    path = tmp_path / "vims.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copytree(REPO / "suites" / "data" / "vims_sample", tmp_path / "data" / "vims_sample")
    cluster = load_data(load_suite(path), SAMPLE).entries[0]
    documents = cluster.fields["documents"]
    assert cluster.fields["input_mode"] == "documents"
    assert cluster.fields["passages"] == [f"{d['title']}\n{d['content']}" for d in documents]


def test_vims_s3_mode_needs_selected_sentences(tmp_path):
    records = [{"id": "c1", "documents": [{"title": "T", "content": "Nội dung."}], "summaries": ["Tóm tắt."]}]
    write_jsonl(tmp_path / "clusters.jsonl", records)
    text = (REPO / "suites" / "vims.yaml").read_text(encoding="utf-8")
    path = tmp_path / "vims.yaml"
    path.write_text(text.replace("local: vims/ViMs", "source: clusters.jsonl"), encoding="utf-8")
    [bad] = load_data(load_suite(path), DataOptions()).entries
    assert isinstance(bad, BadRecord) and bad.origin.endswith("clusters.jsonl:1")
    assert "record c1: field 'selected_sentences': no sentence labelled 1 in the S3 files" in bad.problem
