"""Conformance of the seed suites on real records (`../shared/data`, read through --data-dir).

The folder sits beside the repository in CI; elsewhere set VNLLMTEST_SHARED_DATA to a copy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from vnllmtest.loaders import DataOptions, Item, load_data
from vnllmtest.suite import load_suite

from support import REPO, run_folders, write_replay

SHARED = Path(os.environ.get("VNLLMTEST_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
pytestmark = [
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"real benchmark data not found at {SHARED}"),
    pytest.mark.project(samples=True),  # the repository's suites, for the runs below
]
FULL = DataOptions(data_dir=SHARED)


def loaded(name: str):
    return load_data(load_suite(REPO / "suites" / f"{name}.yaml"), FULL)


def every_record(name: str) -> list:
    """All of a suite's records, as a run of its full split (no sampling) sees them."""
    suite = load_suite(REPO / "suites" / f"{name}.yaml")
    dataset = suite.spec.dataset.model_copy(update={"sampling": None})
    return load_data(dataclasses.replace(suite, spec=suite.spec.model_copy(update={"dataset": dataset})), FULL).entries


def test_vmlu_validation_split_loads_whole():
    data = loaded("vmlu")
    assert data.total == len(data.pool) == 744
    assert Counter(len(item.labels) for item in data.pool) == {4: 717, 3: 27}
    subjects = Counter(item.tags["subject"] for item in data.pool)
    assert sorted(subjects) == [f"{n:02d}" for n in range(1, 59)]
    categories = Counter(item.tags["category"] for item in data.pool)
    assert sum(categories.values()) == 744 and set(categories) == {"STEM", "Social Science", "Humanities", "Other"}
    by_id = {item.id: item for item in data.pool}
    assert by_id["28-0007"].references == ("C",)
    assert all(item.fields["choices"][0].startswith("A. ") for item in data.pool)


def test_vmlu_default_is_the_whole_split_in_source_order():
    """The published protocol: all 744 validation questions, no sampling."""
    data = loaded("vmlu")
    assert data.planned == len(data.entries) == 744
    assert [item.id for item in data.entries] == [item.id for item in every_record("vmlu")]


def test_visquad_records_load_and_the_default_sample_is_seeded_and_stratified():
    data = loaded("visquad2")  # a count plan: sampled as the records stream by, so only the chosen are kept
    assert data.total == 1000 and len(data.entries) == 900
    assert data.notes == ("answerable=HasAns: wanted 900, the data has 800 (all taken)",)
    records = every_record("visquad2")
    assert Counter(item.tags["answerable"] for item in records) == {"HasAns": 800, "NoAns": 200}
    assert all(not item.references for item in records if item.tags["answerable"] == "NoAns")
    # 1,000 with 10% unanswerable asks for 900 answerable; this subset has 800, taken whole and reported.
    assert Counter(item.tags["answerable"] for item in data.entries) == {"HasAns": 800, "NoAns": 100}
    assert [item.id for item in loaded("visquad2").entries] == [item.id for item in data.entries]


def test_vims_release_folder_loads_300_clusters_and_the_default_takes_a_seeded_100():
    clusters = every_record("vims")
    assert len(clusters) == 300
    assert sum(len(item.fields["documents"]) for item in clusters) == 1945
    assert all(len(item.references) == 2 for item in clusters)
    data = loaded("vims")
    assert data.total == 300 and data.planned == len(data.entries) == 100
    assert [item.id for item in data.entries] == [item.id for item in loaded("vims").entries]


def test_vims_s3_mode_rebuilds_the_selected_sentences():
    """Every sentence labelled 1 in a cluster's S3 files, and nothing else, in the S3 input."""
    for item in every_record("vims"):
        selected = set()
        for s3_file in (SHARED / "vims" / "ViMs" / "S3_summary" / item.id).glob("*.s3.txt"):
            for line in s3_file.read_text(encoding="utf-8").splitlines():
                if line.startswith("1\t"):
                    selected.add(unicodedata.normalize("NFC", line[2:].strip()))
        assert set(item.fields["selected_sentences"]) == selected
        assert item.fields["passages"] == item.fields["selected_sentences"]


def test_vtsnlp_published_column_layout_loads_from_parquet_like_csv(tmp_path):
    """Our own rows in the published layout (plus the `max_len` column some copies have), as Parquet."""
    pyarrow = pytest.importorskip("pyarrow")
    import csv

    import pyarrow.parquet as pq

    with (REPO / "suites" / "data" / "vtsnlp_sample.csv").open(encoding="utf-8", newline="") as handle:
        rows = [{**row, "max_len": 512} for row in csv.DictReader(handle)]
    (tmp_path / "vtsnlp").mkdir()
    pq.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "vtsnlp" / "instruct_general_dataset.parquet")
    data = load_data(load_suite(REPO / "suites" / "vtsnlp.yaml"), DataOptions(data_dir=tmp_path))
    csv_items = load_data(load_suite(REPO / "suites" / "vtsnlp.yaml"), DataOptions(mode="sample")).entries
    assert {item.id for item in data.entries} == {item.id for item in csv_items}
    categories = Counter(item.tags["category"] for item in data.entries)
    assert categories == Counter(item.tags["category"] for item in csv_items)


# --- replay runs over the whole of each dataset -------------------------------------------------


@pytest.fixture
def shared_project(project: pytest.Pytester) -> pytest.Pytester:
    """The repository's suites with sampling removed (the full split), as a user would edit them."""
    for path in (project.path / "suites").glob("*.yaml"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(line for line in lines if not line.startswith("  sampling:")), encoding="utf-8")
    return project


def run_replay(project: pytest.Pytester, suite: str, predictions: list[dict]) -> dict:
    """A replay run; judged suites get a replayed judge that gives every answer full marks."""
    verdict = '{"score": 10, "faithfulness": 10, "coverage": 10, "coherence": 10, "ly_do": "Trùng bản tham khảo."}'
    judge = write_replay(project.path, {p["id"]: verdict for p in predictions}, "judge")
    args = ["--data-dir", str(SHARED), "--model", write_replay(project.path, predictions), "--judge", judge, "-q"]
    result = project.runpytest(f"suites/{suite}.yaml", *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    [run] = run_folders(project.path)
    [group] = run.results
    return group


def test_visquad_gold_answers_and_abstentions_score_100(shared_project):
    records = every_record("visquad2")
    predictions = [
        {"id": item.id, "prediction": item.references[0] if item.references else "không có câu trả lời"}
        for item in records
    ]
    group = run_replay(shared_project, "visquad2", predictions)
    assert group["items"] == 1000 and group["statuses"]["passed"] == 1000
    for answerable, count in (("HasAns", 800), ("NoAns", 200)):
        metrics = group["breakdowns"]["answerable"][answerable]
        assert metrics["exact_match"]["n"] == count
        assert metrics["exact_match"]["value"] == metrics["f1"]["value"] == 100.0


def test_vims_gold_summary_as_prediction_scores_rouge_100(shared_project):
    clusters = every_record("vims")
    group = run_replay(shared_project, "vims", [{"id": item.id, "prediction": item.references[0]} for item in clusters])
    assert group["items"] == 300
    assert all(group["metrics"][name]["value"] == 100.0 for name in ("rouge_1", "rouge_2", "rouge_l"))
    assert group["metrics"]["judge_overall"]["value"] == group["metrics"]["judge_score"]["value"] == 10.0
    assert group["metrics"]["verdict_coverage"]["value"] == 100.0


def test_vmlu_gold_letters_score_100_in_every_category(shared_project):
    pool = loaded("vmlu").pool
    group = run_replay(shared_project, "vmlu", [{"id": item.id, "prediction": item.references[0]} for item in pool])
    assert group["items"] == 744 and group["metrics"]["accuracy"]["value"] == 100.0
    assert all(metrics["accuracy"]["value"] == 100.0 for metrics in group["breakdowns"]["category"].values())


def test_bundled_model_runs_the_real_data(project):
    """Gemma 3 270M on a few real records of each suite with local data, through the user's path."""
    args = ["suites/vmlu.yaml", "suites/visquad2.yaml", "suites/vims.yaml", "--data-dir", str(SHARED)]
    result = project.runpytest(*args, "--limit", "2", "--max-new-tokens", "8", "--judge", "gemma3-270m")
    outcomes = result.parseoutcomes()
    assert "error" not in outcomes and "failed" not in outcomes, result.stdout.str()[-3000:]
    [run] = run_folders(project.path)
    document = run.summary
    assert {group["suite"]: group["items"] for group in document["results"]} == {"vmlu": 2, "visquad2": 2, "vims": 2}
    assert all(str(SHARED) in suite["data_origin"] for suite in document["manifest"]["suites"].values())
    result.stdout.fnmatch_lines(["vnllmtest data note: visquad2: answerable=HasAns: wanted 900, the data has 800*"])
    markdown = run.markdown
    assert "| vmlu | accuracy_loglik |" in markdown and "| visquad2 | answerable=HasAns | f1 |" in markdown
    assert all(isinstance(item, Item) for item in loaded("vims").entries)


# --- the bundled suites as shipped, replayed together -------------------------------------------


def test_bundled_suites_replayed_on_shared_data_run_the_published_sizes(project, replay):
    """vmlu 744, visquad2 900 (800 answerable, the named shortfall, + 100), vims 100: every gate decided,
    and the replay backend's missing log-probabilities counted as unscored, never filled in."""
    vmlu, visquad, vims = (loaded(name).entries for name in ("vmlu", "visquad2", "vims"))  # as the run selects

    # VMLU: the gold letter on two items of three, the next option's letter on the third, in two reply styles.
    right = [i % 3 != 0 for i in range(len(vmlu))]
    predictions = []
    for i, item in enumerate(vmlu):
        gold = item.references[0]
        letter = gold if right[i] else item.labels[(item.labels.index(gold) + 1) % len(item.labels)]
        predictions.append({"id": item.id, "suite": "vmlu", "prediction": letter if i % 2 else f"Đáp án: {letter}"})
    # ViQuAD: the gold phrase on even answerable items, the prompt's abstention on the rest (wrong on an
    # answerable item, right on an unanswerable one).
    answered = 0
    for i, item in enumerate(visquad):
        if item.references and i % 2 == 0:
            answered += 1
            predictions.append({"id": item.id, "suite": "visquad2", "prediction": item.references[0]})
        else:
            predictions.append({"id": item.id, "suite": "visquad2", "prediction": "Không có câu trả lời."})
    # ViMs: the first sentence the annotators selected; the judge gives 6 or 8 overall, alternately.
    verdicts = []
    for i, item in enumerate(vims):
        predictions.append({"id": item.id, "suite": "vims", "prediction": item.fields["selected_sentences"][0]})
        reply = {"score": 6 if i % 2 else 8, "faithfulness": 7, "coverage": 5, "coherence": 6, "ly_do": "Đủ ý chính."}
        verdicts.append({"id": item.id, "suite": "vims", "prediction": json.dumps(reply, ensure_ascii=False)})

    suites = ["suites/vmlu.yaml", "suites/visquad2.yaml", "suites/vims.yaml"]
    args = ["--data-dir", str(SHARED), "--model", replay(predictions), "--judge", replay(verdicts, "judge"), "-q"]
    result = project.runpytest(*suites, *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    note = "answerable=HasAns: wanted 900, the data has 800 (all taken)"
    result.stdout.fnmatch_lines([f"vnllmtest data note: visquad2: {note}"])

    [run] = run_folders(project.path)
    document = run.summary
    groups = {group["suite"]: group for group in document["results"]}
    assert {name: (g["items"], g["suite_items"]) for name, g in groups.items()} == {
        "vmlu": (744, 744), "visquad2": (900, 900), "vims": (100, 100)
    }
    assert document["manifest"]["suites"]["visquad2"]["data_notes"] == [note]
    for name, group in groups.items():
        states = [gate["state"] for gate in group["gates"]]
        assert states and "passed" in states and set(states) <= {"passed", "skipped"}, (name, group["gates"])
        assert group["statuses"]["error"] == 0

    mc = groups["vmlu"]
    assert mc["metrics"]["accuracy"]["n"] == 744 and mc["unscored"].get("accuracy", 0) == 0
    assert mc["metrics"]["accuracy"]["value"] == pytest.approx(100 * sum(right) / 744)
    assert mc["unscored"]["accuracy_loglik"] == 744 and mc["metrics"]["accuracy_loglik"]["n"] == 0
    assert mc["unscored"]["mode_agreement"] == 744  # needs both modes

    qa = groups["visquad2"]
    assert Counter(item.tags["answerable"] for item in visquad) == {"HasAns": 800, "NoAns": 100}
    assert qa["metrics"]["exact_match"]["value"] == pytest.approx(100 * (answered + 100) / 900)

    summ = groups["vims"]
    assert summ["metrics"]["verdict_coverage"]["value"] == 100.0
    assert summ["metrics"]["judge_score"]["value"] == pytest.approx(7.0)  # (8 + 6) / 2, the holistic score
    assert summ["metrics"]["judge_overall"]["value"] == pytest.approx(6.0)  # (7 + 5 + 6) / 3, the criteria
    assert summ["metrics"]["judge_coverage"]["value"] == pytest.approx(5.0)
