"""Word-level scores (f1_word, rouge_1_word, rouge_2_word, rouge_l_word): underthesea's real segmentation of our
own Vietnamese sentences, through the metric table as a run computes them; a replayed suite run that reports
them beside the syllable-level ones; and the collection error of a suite that names one where underthesea
cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
from underthesea import word_tokenize

from support import read_run, replay_rows
from vnllmtest.metric_table import metric_info
from vnllmtest.metrics.words import words

ABSTAIN = ["không có câu trả lời"]
WORD_METRICS = ("f1_word", "rouge_1_word", "rouge_2_word", "rouge_l_word")


def score(metric: str, answer: str, references: list[str], abstentions: list[str] = ABSTAIN) -> float:
    """The item value of `metric`, computed as a run computes it."""
    return metric_info(metric).compute(answer, references, abstentions)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_the_metrics_are_registered_with_their_definition_and_requirement():
    for name in WORD_METRICS:
        metric = metric_info(name)
        assert (metric.kind, metric.scale, metric.version) == ("continuous", "points", 1)
        assert "over words (underthesea segmentation)" in metric.summary
        assert metric.requires == ("underthesea",) and metric.install == "pip install 'vnllmtest[words]'"
        assert metric.missing_modules() == []
    with pytest.raises(KeyError):
        metric_info("exact_match_word")  # it would equal exact_match


def test_segmentation_reads_case_on_the_original_then_normalises_each_word():
    # Capitalised, "Mai Anh" and "Hồ Chí Minh" are names; lowercased first, the segmenter splits them.
    assert words("Cô Mai Anh học bài") == ("cô", "mai anh", "học", "bài")
    assert word_tokenize("cô mai anh học bài") == ["cô", "mai", "anh", "học", "bài"]
    assert words("Thành phố Hồ Chí Minh") == ("thành phố", "hồ chí minh")
    assert word_tokenize("thành phố hồ chí minh") != ["thành phố", "hồ chí minh"]
    # Punctuation drops out, inside quotes too; NFD input and old tone placement read as NFC and the new one.
    assert words("“Hà Nội, thủ đô!”") == ("hà nội", "thủ đô") and words("...") == ()
    assert words(nfd("Thủy điện Hoà Bình")) == words("Thuỷ điện Hòa Bình") == ("thuỷ", "điện", "hoà bình")


def test_a_wrong_word_gets_no_credit_where_its_shared_syllable_did():
    assert score("f1", "Hà Tĩnh", ["Hà Nội"]) == 0.5
    assert all(score(name, "Hà Tĩnh", ["Hà Nội"]) == 0.0 for name in WORD_METRICS)
    # Words: [hà nội, là, trung tâm, kinh tế] against [hà nội, là, trung tâm, chính trị]: 3 of 4 shared, and 2 of
    # 3 word bigrams. Syllables: 5 of 7 shared.
    answer, gold = "Hà Nội là trung tâm kinh tế", ["Hà Nội là trung tâm chính trị"]
    assert score("f1", answer, gold) == pytest.approx(5 / 7)
    assert score("f1_word", answer, gold) == score("rouge_1_word", answer, gold) == pytest.approx(3 / 4)
    assert score("rouge_2_word", answer, gold) == pytest.approx(2 / 3)
    assert score("rouge_l_word", answer, gold) == pytest.approx(3 / 4)
    # Order: the longest common word subsequence of [trung tâm, chính trị, là, hà nội] and the gold is 2 words.
    assert score("rouge_l_word", "Trung tâm chính trị là Hà Nội", gold) == pytest.approx(2 * 2 / 8)


@pytest.mark.parametrize("name", WORD_METRICS)
def test_spelling_variants_are_one_answer_and_the_best_reference_counts(name):
    assert score(name, nfd("Thành phố Hồ Chí Minh"), ["thành phố Hồ Chí Minh."]) == 1.0
    assert score(name, "Hoà Bình", ["Hòa Bình"]) == 1.0
    assert score(name, "“Hà Nội, thủ đô!”", ["Hà Nội thủ đô"]) == 1.0
    assert score(name, "sông Mê Kông", ["Hà Tĩnh", "sông Mê Kông"]) == 1.0


@pytest.mark.parametrize("name", WORD_METRICS)
def test_abstentions_and_empty_answers_follow_the_syllable_rules(name):
    assert score(name, "Trả lời: Không có câu trả lời.", []) == 1.0  # unanswerable, abstained
    assert score(name, "Hà Nội", []) == 0.0  # unanswerable, answered
    assert score(name, "Không có câu trả lời.", ["Hà Nội"]) == 0.0  # answerable, abstained
    assert score(name, "", []) == 1.0 and score(name, "", ["Hà Nội"]) == 0.0
    assert score(name, "Không có câu trả lời.", [], abstentions=[]) == 0.0  # not declared: an answer


def test_segmentations_are_cached_by_text():
    before = words.cache_info()
    for _ in range(3):
        score("f1_word", "Hà Nội", ["Thủ đô của Việt Nam là Hà Nội ngàn năm văn hiến"])
    after = words.cache_info()
    assert after.hits - before.hits >= 4 and after.misses - before.misses <= 2


QA = [
    {"id": "q1", "context": "Hà Nội là thủ đô.", "question": "Thủ đô?", "answers": {"text": ["Hà Nội"]}},
    {"id": "q2", "context": "Thành phố Hồ Chí Minh ở phía nam.", "question": "Ở đâu?",
     "answers": {"text": ["Thành phố Hồ Chí Minh", "TP. Hồ Chí Minh"]}},
    {"id": "q3", "context": "Trời mưa.", "question": "Ai thắng?", "answers": {"text": []}, "is_impossible": True},
]
# f1: q1 "Hà Tĩnh" 1/2; q2 "thành phố Hồ Chí Minh" 1; q3 abstained 1 -> 83.33. f1_word: 0, 1, 1 -> 66.67.
REPLIES = {"q1": "Hà Tĩnh", "q2": "thành phố Hồ Chí Minh", "q3": "Không có câu trả lời."}
WORD_SUITE = {
    "task": "extractive_qa",
    "prompt": {"template": "{{ context }} {{ question }}"},
    "metrics": ["exact_match", "f1", "f1_word", "rouge_l_word"],
    "scoring": {"mode": "generate", "abstentions": ABSTAIN},
    "item_pass": {"metric": "f1_word", "min": 0.5},
    "gates": [{"metric": "f1_word", "min": 60}],
}
# pytest where `import underthesea` fails and importlib.util.find_spec("underthesea") is None, as when not installed.
BLOCKED_RUN = "import sys; sys.modules['underthesea'] = None; import pytest; sys.exit(pytest.main(sys.argv[1:]))"


@pytest.mark.project(suites={"qa": WORD_SUITE}, records={"qa.jsonl": QA}, predictions={"preds": replay_rows(REPLIES)})
def test_a_run_reports_word_level_beside_syllable_level_and_fails_to_collect_without_underthesea(project):
    result = project.runpytest("suites", "--model", "replay:preds.jsonl", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert result.parseoutcomes()["passed"] == 2 and result.parseoutcomes()["missed"] == 1  # q1 misses on f1_word
    run = read_run(project.path)
    [group] = run.results
    assert group["metrics"]["f1"]["value"] == pytest.approx(100 * 2.5 / 3)
    assert group["metrics"]["f1_word"]["value"] == pytest.approx(100 * 2 / 3)
    assert group["metrics"]["rouge_l_word"]["n"] == 3 and group["unscored"]["f1_word"] == 0
    assert run.summary["metric_definitions"]["f1_word"] == 1
    assert run.item("q1")["metrics"] == {"exact_match": 0.0, "f1": 0.5, "f1_word": 0.0, "rouge_l_word": 0.0}
    markdown = run.markdown
    assert "| qa | f1 | 83.3" in markdown and "| qa | f1_word | 66.7" in markdown
    assert "`f1_word` (v1): overlap F1 over words (underthesea segmentation)" in markdown
    assert run.manifest["versions"]["underthesea"] == "9.5.0"

    # A baseline whose words came from another underthesea release: the comparison says so.
    summary = run.path / "summary.json"
    summary.write_text(summary.read_text("utf-8").replace('"underthesea": "9.5.0"', '"underthesea": "9.4.1"'), "utf-8")
    compared = project.runpytest("suites", "--model", "replay:preds.jsonl", "-p", "no:cacheprovider",
                                 "--baseline", str(run.path))
    note = "*f1_word, rouge_l_word: computed with underthesea 9.4.1 in * and 9.5.0 in this run*"
    compared.stdout.fnmatch_lines([note])

    # Loading the suite only looks underthesea up; the first text scored imports it.
    load = "import sys; from pathlib import Path; from vnllmtest.suite import load_suite; " \
        "load_suite(Path('suites/qa.yaml')); print('underthesea' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", load], cwd=project.path, capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "False", loaded.stderr[-3000:]

    # The same project where underthesea cannot be imported: a collection error saying how to install it.
    blocked = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, "suites", "--model", "replay:preds.jsonl", "-p", "no:cacheprovider"],
        cwd=project.path, capture_output=True, text=True, timeout=300,
    )
    assert blocked.returncode == 2, blocked.stdout[-3000:] + blocked.stderr[-3000:]
    assert "suites/qa.yaml" in blocked.stdout and "line 6: metrics.2: Value error, metric 'f1_word' needs underthesea" \
        ", which is not installed here; install it with: pip install 'vnllmtest[words]'" in blocked.stdout
    assert "rouge_l_word" in blocked.stdout and "Traceback" not in blocked.stdout + blocked.stderr


@pytest.mark.parametrize(
    "answer, gold",
    [
        ("COVID-19 lan nhanh", "COVID 19 lan nhanh"),
        ("Dân số TP.HCM tăng", "Dân số TP. HCM tăng"),
        ("tỉnh Bà Rịa-Vũng Tàu", "tỉnh Bà Rịa - Vũng Tàu"),
        ("giá 5,5 triệu ngày 2/9/1945", "giá 5, 5 triệu ngày 2 / 9 / 1945"),
        ("thành phố hồ chí minh", "Thành phố Hồ Chí Minh"),  # lowercased, the segmenter splits the name
        ("đọc báo vnexpress.net", "đọc báo vnexpress . net"),
    ],
)
def test_an_exact_match_gets_full_word_credit(answer, gold):
    assert metric_info("exact_match").compute(answer, [gold], []) == 1.0
    assert all(score(name, answer, [gold, "Hà Tĩnh"]) == 1.0 for name in WORD_METRICS)


def test_punctuation_never_sits_inside_a_word():
    assert words("COVID-19 ở TP.HCM, giá 5,5%") == ("covid", "19", "ở", "tp", "hcm", "giá", "5", "5")
    assert score("f1_word", "COVID-19", ["COVID 19 ở Hà Nội"]) == score("f1_word", "COVID 19", ["COVID 19 ở Hà Nội"])


def test_segmenting_loads_neither_torch_nor_transformers():
    code = (
        "import sys; from vnllmtest.metrics.words import words; assert words('Thủ đô Hà Nội') == ('thủ đô', 'hà nội');"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


def test_an_installed_metric_requires_top_level_modules_only():
    from vnllmtest.extensions import Metric, _installed_metric_problem

    dotted = Metric("continuous", "points", 1, "x", compute=lambda *args: 0.0, requires=("pkg.sub",))
    assert "names top-level modules" in _installed_metric_problem(dotted)
    plain = Metric("continuous", "points", 1, "x", compute=lambda *args: 0.0, requires=("pkg",))
    assert _installed_metric_problem(plain) is None
