"""A warm cache that needs no tokenizer: prompts and predictions keyed by what the prompt is rendered from,
so that a run the cache answers imports neither torch nor transformers, and the key still changes with
every ingredient of the prompt (real tiny model folders, real suite files, real pytest runs)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from vnllmtest.backends import HFSettings, load_backend
from vnllmtest.backends.base import Backend, Generation, ModelError, Request
from vnllmtest.backends.registry import load_aliases, parse_model_spec
from vnllmtest.cache import PredictionCache
from vnllmtest.evaluation import prompt_constants
from vnllmtest.loaders import Item
from vnllmtest.prompts import PromptBuilder
from vnllmtest.rendering import Rendered, render_prompts
from vnllmtest.runner import Runner
from vnllmtest.suite import load_suite

from support import cold_then_warm, read_run, run_folders, write_suite

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


@pytest.mark.project(suites=SUITES, records={"mc.jsonl": MC_RECORDS, "qa.jsonl": QA_RECORDS})
def test_a_run_the_cache_answers_imports_neither_torch_nor_transformers(project, tiny_model_dir):
    first, second = cold_then_warm(project, "suites", f"--model={tiny_model_dir}", "-p", "no:cacheprovider")
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


def rendered(
    model: Path | str, suite: Path, item: Item, cache: PredictionCache | None, thinking=False, aliases=None, pool=()
):
    """The item's prompt for `suite` through the real backend of `model` (few-shot examples from `pool`), with
    the source that keys it (None without a cache)."""
    spec = load_suite(suite).spec
    backend = load_backend(parse_model_spec(str(model), aliases), HFSettings(device="cpu"))
    constants = prompt_constants(spec)
    builder = PromptBuilder(spec.prompt, list(pool), constants)
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
    unread = replace(item, fields={**item.fields, "nguon": "wiki"})  # a field no template reads
    assert rendered(folder, suite, unread, cache) == base

    def variant(scoring=None, **suite_prompt) -> Path:
        fields = {**SUITES["qa"], "prompt": {"budget": BUDGET, **suite_prompt}}
        fields.update({"scoring": scoring} if scoring else {})
        return write_suite(tmp_path / f"v{len(list(tmp_path.iterdir()))}", "qa", fields)

    shots = [Item(f"s{n}", {"context": f"Huế {n}.", "question": "Ở đâu?", "answer": city}, (city,))
             for n, city in enumerate(["Huế", "Đà Nẵng"])]
    fewshot = variant(fewshot={"k": 1, "target": "{{ answer }}"}, budget={**BUDGET, "max_tokens": 80})
    says = "{{ context }} {{ question }} {{ abstention }}"
    changed = {
        "thinking": rendered(folder, suite, item, cache, thinking=True),
        "system prompt": rendered(folder, variant(system="Trả lời ngắn gọn."), item, cache),
        "few-shot example": rendered(folder, fewshot, item, cache, pool=shots[:1]),
        "another few-shot example": rendered(folder, fewshot, item, cache, pool=shots[1:]),
        "constants": rendered(folder, variant({"abstentions": ["Không biết"]}, template=says), item, cache),
        "other constants": rendered(folder, variant({"abstentions": ["Không rõ"]}, template=says), item, cache),
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
    assert all(isinstance(prompt, Rendered) for prompt in changed.values()), changed
    sources = {name: prompt.source for name, prompt in changed.items()}
    assert len({base.source, *sources.values()}) == len(changed) + 1, sources
    # Those that change the text the model sees change it, and the cached prompt is never the old one.
    for name in ("template", "budget", "record", "alias", "chat template", "system prompt", "few-shot example"):
        assert changed[name].prompt != base.prompt, name
    assert changed["constants"].prompt != changed["other constants"].prompt
    assert "trợ lý" in changed["chat template"].prompt and changed["budget"].truncation.max_tokens == 30


def test_records_alike_up_to_the_budget_bound_keep_their_own_truncation_counts(tiny_model_dir, tmp_path):
    suite = write_suite(tmp_path, "qa", SUITES["qa"])
    long = " ".join(["Hà Nội là thủ đô của Việt Nam."] * 120)  # past the bound: 40 tokens x 64 characters
    first, second = (Item(f"q{n}", {"context": text, "question": "Ở đâu?"}, ("Hà Nội",))
                     for n, text in enumerate([long, f"{long} Thêm một câu nữa ở cuối."]))
    cache = PredictionCache(tmp_path / "cache")
    assert rendered(tiny_model_dir, suite, first, cache).truncation.chars_cut > 0
    cached = rendered(tiny_model_dir, suite, second, cache)
    fresh = rendered(tiny_model_dir, suite, second, None)
    assert cached.prompt == fresh.prompt and cached.truncation == fresh.truncation
    assert fresh.truncation.words_total == rendered(tiny_model_dir, suite, first, None).truncation.words_total + 6


def test_a_prompt_entry_with_values_of_the_wrong_type_is_rendered_again_and_counted(tiny_model_dir, tmp_path):
    suite = write_suite(tmp_path, "qa", SUITES["qa"])
    record = QA_RECORDS[0]
    item = Item("q0", {"context": record["context"], "question": record["question"]}, ("Hà Nội",))
    base = rendered(tiny_model_dir, suite, item, PredictionCache(tmp_path / "cache"))
    truncation = asdict(base.truncation)
    corrupt = [
        {"prompt": base.prompt, "truncation": {}},
        {"prompt": base.prompt, "truncation": {**truncation, "words_total": "12"}},
        {"prompt": base.prompt, "truncation": {**truncation, "max_tokens": True}},
        {"prompt": base.prompt, "truncation": {**truncation, "extra": 1}},
        {"prompt": ["a list"], "truncation": truncation},
    ]
    for value in corrupt:
        with sqlite3.connect(tmp_path / "cache" / "predictions.sqlite") as db:
            assert db.execute("UPDATE prompts SET value = ?", [json.dumps(value)]).rowcount == 1
        cache = PredictionCache(tmp_path / "cache")
        assert rendered(tiny_model_dir, suite, item, cache) == base and cache.malformed == 1, value


class ThirdParty(Backend):
    """A backend of another package, without a prompt identity: the cache is keyed by its prompt text."""

    label = "third-party"
    fingerprint = "third-party:v3"
    supports_loglikelihood = True

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [Generation(request.prompt.upper(), "stop", 2) for request in requests]

    def score_choices(self, requests: Sequence[Request]) -> list[dict[str, float]]:
        return [{label: -1.0 for label in request.labels} for request in requests]


def test_keys_of_prompt_keyed_backends_are_those_of_schema_version_1(tmp_path):
    """Their cached answers, paid for in API calls, stay found across the change to version 2."""
    runner = Runner(PredictionCache(tmp_path), batch_size=4)
    request = Request("demo", "r0", "Thủ đô của Việt Nam là", ("A", "B"), 5, stop=("\n",))
    [generated] = runner.run(ThirdParty(), [request], "generate")
    [scored] = runner.run(ThirdParty(), [replace(request, label_tokens="bare")], "loglikelihood")

    def version_1(mode: str, **parameters) -> str:  # cache.cache_key as version 1 had it
        material = [1, "third-party:v3", mode, request.prompt, parameters]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()

    assert generated.cache_key == version_1("generate", max_new_tokens=5, stop=["\n"])
    assert scored.cache_key == version_1("loglikelihood", labels=["A", "B"], label_tokens="bare")


def test_the_alias_end_tokens_are_in_the_fingerprint(tiny_model_dir):
    def fingerprint(**alias) -> str:
        aliases = load_aliases([("test", {"tiny": {"hf": str(tiny_model_dir), **alias}})])
        return load_backend(parse_model_spec("tiny", aliases), HFSettings(device="cpu")).fingerprint

    fingerprints = {fingerprint(), fingerprint(end_tokens=["<|im_start|>"]), fingerprint(end_tokens=["<|endoftext|>"])}
    assert len(fingerprints) == 3


@pytest.mark.project(suites=SUITES, records={"mc.jsonl": MC_RECORDS, "qa.jsonl": QA_RECORDS})
@pytest.mark.parametrize("template", ["{not json", json.dumps(["{{ messages }}"])])
def test_a_malformed_chat_template_json_makes_each_item_an_error_naming_it(project, tiny_model_dir, template):
    folder = shutil.copytree(tiny_model_dir, project.path / "model")
    (folder / "chat_template.jinja").unlink()  # the tokenizer has no template: the processor's file is read
    (folder / "chat_template.json").write_text(template, "utf-8")
    backend = load_backend(parse_model_spec(str(folder)), HFSettings(device="cpu"))
    with pytest.raises(ModelError, match="chat_template.json") as first:
        backend.plain_prompts
    with pytest.raises(ModelError) as again:
        backend.format_prompt([{"role": "user", "content": "Chào"}])
    assert again.value is first.value  # read once, remembered
    result = project.runpytest("suites", f"--model={folder}", "-p", "no:cacheprovider")
    assert result.ret == 1 and "Traceback" not in result.stdout.str()
    items = read_run(project.path).items
    assert len(items) == len(MC_RECORDS) + len(QA_RECORDS)
    assert all(item["status"] == "error" and "chat_template.json" in item["message"] for item in items)
