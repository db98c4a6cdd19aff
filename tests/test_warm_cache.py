"""A warm cache that needs no tokenizer: prompts and predictions keyed by what the prompt is rendered from,
so that a run the cache answers imports neither torch nor transformers, and the key still changes with
every ingredient of the prompt (real tiny model folders, real suite files, real pytest runs)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from vnllmtest.backends import HFSettings, load_backend
from vnllmtest.backends.registry import load_aliases, parse_model_spec
from vnllmtest.cache import PredictionCache
from vnllmtest.evaluation import prompt_constants
from vnllmtest.loaders import Item
from vnllmtest.prompts import PromptBuilder
from vnllmtest.rendering import render_prompts
from vnllmtest.suite import load_suite

from support import run_folders, write_suite

CHOICES = ["A. Hà Nội", "B. Huế", "C. Đà Nẵng", "D. Cần Thơ"]
MC_RECORDS = [{"id": f"m{n}", "question": f"Thủ đô số {n}?", "choices": CHOICES, "answer": "A"} for n in range(4)]
LONG_CONTEXT = " ".join(["Hà Nội là thủ đô của Việt Nam, nằm bên bờ sông Hồng."] * 12)
QA_RECORDS = [
    {"id": f"q{n}", "context": f"{LONG_CONTEXT} {n}.", "question": "Ở đâu?", "answers": {"text": ["Hà Nội"]}}
    for n in range(3)
]
BUDGET = {"field": "context", "max_tokens": 40}
SUITES = {
    "mc": {"task": "multiple_choice", "scoring": {"mode": "loglikelihood"}, "metrics": ["accuracy_loglik"],
           "item_pass": {"metric": "accuracy_loglik", "min": 1}},
    "qa": {"task": "extractive_qa", "generation": {"max_new_tokens": 3}, "prompt": {"budget": BUDGET}},
}
# Written into the test project: the heavy modules each pytest process held when it ended.
MODULES_SEEN = """
import json
import sys
from pathlib import Path


def pytest_unconfigure(config):
    held = sorted(name for name in ("tokenizers", "torch", "transformers") if name in sys.modules)
    with Path(__file__).with_name("modules-seen.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(held) + "\\n")
"""


@pytest.mark.project(suites=SUITES, records={"mc.jsonl": MC_RECORDS, "qa.jsonl": QA_RECORDS})
def test_a_run_the_cache_answers_imports_neither_torch_nor_transformers(project, tiny_model_dir):
    project.makeconftest(MODULES_SEEN)
    args = ["suites", f"--model={tiny_model_dir}", "-p", "no:cacheprovider"]
    cold = project.runpytest_subprocess(*args)
    warm = project.runpytest_subprocess(*args)
    assert cold.ret == warm.ret and cold.ret in (0, 1)  # random weights may fail gates; the runs must agree
    assert "error" not in warm.parseoutcomes() and cold.parseoutcomes() == warm.parseoutcomes()
    seen = [json.loads(line) for line in (project.path / "modules-seen.jsonl").read_text("utf-8").splitlines()]
    assert seen == [["tokenizers", "torch", "transformers"], []]
    first, second = run_folders(project.path)
    assert not any(item["cached"] for item in first.items) and all(item["cached"] for item in second.items)
    assert [{**item, "cached": True} for item in first.items] == second.items  # prompts and budget cuts too
    assert all(item["truncation"] for item in second.items if item["suite"] == "qa")
    assert list(second.manifest["models"].values())[0]["loads"] == []


@pytest.mark.project(suites=SUITES, records={"mc.jsonl": MC_RECORDS, "qa.jsonl": QA_RECORDS})
def test_a_run_stopped_after_rendering_computes_every_answer_from_the_cached_prompts(project, tiny_model_dir):
    args = ["suites", f"--model={tiny_model_dir}", "-p", "no:cacheprovider"]
    project.runpytest(*args)
    with sqlite3.connect(project.path / ".vnllmtest-cache" / "predictions.sqlite") as db:
        db.execute("DELETE FROM predictions")
        [(prompts,)] = db.execute("SELECT COUNT(*) FROM prompts")
    assert prompts == len(MC_RECORDS) + len(QA_RECORDS)  # one rendered prompt per item
    project.runpytest(*args)
    first, second = run_folders(project.path)
    assert not any(item["cached"] for item in second.items) and second.items == first.items


def rendered(model: Path | str, suite: Path, item: Item, cache: PredictionCache, thinking=False, aliases=None):
    """The item's prompt for `suite` through the real backend of `model`, with the source that keys it."""
    spec = load_suite(suite).spec
    backend = load_backend(parse_model_spec(str(model), aliases), HFSettings(device="cpu"))
    constants = prompt_constants(spec)
    builder = PromptBuilder(spec.prompt, [], constants)
    [prompt] = render_prompts(spec, backend, builder, constants, [item], thinking, cache)
    return prompt


def test_the_key_changes_with_every_ingredient_of_the_prompt_and_only_then(tiny_model_dir, tmp_path):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    cache = PredictionCache(tmp_path / "cache")
    suite = write_suite(tmp_path, "qa", SUITES["qa"])
    record = QA_RECORDS[0]
    item = Item("q0", {"context": record["context"], "question": record["question"]}, ("Hà Nội",))
    base = rendered(folder, suite, item, cache)
    assert base.truncation is not None and base.source is not None
    assert rendered(folder, suite, replace(item, references=("Huế",)), cache) == base  # not in the prompt

    def variant(**suite_prompt) -> Path:
        fields = {**SUITES["qa"], "prompt": {"budget": BUDGET, **suite_prompt}}
        return write_suite(tmp_path / f"v{len(list(tmp_path.iterdir()))}", "qa", fields)

    changed = {
        "thinking": rendered(folder, suite, item, cache, thinking=True),
        "template": rendered(folder, variant(template="{{ question }} {{ context }}"), item, cache),
        "budget": rendered(folder, variant(budget={**BUDGET, "max_tokens": 30}), item, cache),
        "record": rendered(folder, suite, replace(item, fields={**item.fields, "question": "Nằm ở đâu?"}), cache),
        "alias": rendered("plain-tiny", suite, item, cache, aliases=load_aliases(
            [("test", {"plain-tiny": {"hf": str(folder), "chat_template": "plain"}})]
        )),
    }
    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 4096}), "utf-8")
    changed["tokenizer files"] = rendered(folder, suite, item, cache)
    template = folder / "chat_template.jinja"
    template.write_text(template.read_text("utf-8").replace("assistant", "trợ lý"), "utf-8")
    changed["chat template"] = rendered(folder, suite, item, cache)
    sources = {name: prompt.source for name, prompt in changed.items()}
    assert len({base.source, *sources.values()}) == len(changed) + 1, sources
    # Those that change the text the model sees change it, and the cached prompt is never the old one.
    for name in ("template", "budget", "record", "alias", "chat template"):
        assert changed[name].prompt != base.prompt, name
    assert "trợ lý" in changed["chat template"].prompt and changed["budget"].truncation.max_tokens == 30
