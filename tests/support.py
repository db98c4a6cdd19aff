"""Test helpers: test projects (suites, records, replayed predictions) and the run folders they write, a tiny
random-weight Qwen3 model with a Vietnamese BPE tokenizer, JSONL writing."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vnllmtest.backends.base import Backend, Generation, Request

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "suites" / "data"

# The pytest.ini of projects run inside tests: without hypothesis's plugin, which imports a module that takes
# over a second to load at the end of every run (and pytester's in-process runs forget it each time).
INNER_RUN_INI = "[pytest]\naddopts = -p no:hypothesispytest\n"
# A judge block with an inline two-criterion rubric, for suites that replay judge replies.
SUMMARY_JUDGE = {
    "rubric": {
        "scale": {"min": 1, "max": 10},
        "criteria": [
            {"name": "accuracy", "label": "Độ chính xác",
             "description": "Bản tóm tắt nêu đúng sự kiện trong bài báo."},
            {"name": "coherence", "label": "Tính mạch lạc",
             "description": "Các câu nối tiếp nhau rõ nghĩa."},
        ],
    },
    "sees": [{"title": "Bản tóm tắt", "text": "{{ output }}"}],
}

# What a suite of each task holds unless a test says otherwise: its dataset block (the data: data/NAME.jsonl),
# prompt template, metrics, and the metric and minimum of item_pass.
TASK_DEFAULTS: dict[str, tuple[dict, str, list[str], tuple[str, float]]] = {
    "multiple_choice": ({"adapter": "vmlu"}, "{{ question }}", ["accuracy"], ("accuracy", 1)),
    "extractive_qa": ({"adapter": "squad_v2"}, "{{ context }} {{ question }}", ["exact_match", "f1"], ("f1", 0.5)),
    "summarization": (
        {"adapter": "vims", "options": {"input": "documents"}},
        "Tóm tắt: {% for d in documents %}{{ d.content }} {% endfor %}",
        ["rouge_l"],
        ("rouge_l", 0.2),
    ),
    "instruction": ({"adapter": "vtsnlp"}, "{{ instruct }}", ["rouge_l"], ("rouge_l", 0.2)),
}


def suite_document(name: str, task: str, **fields: object) -> dict:
    """A suite as a mapping: the task's defaults with `fields` on top; the keys of a `dataset` or `prompt`
    given are added to the default ones."""
    dataset, template, metrics, (metric, minimum) = TASK_DEFAULTS[task]
    return {
        "vnllmtest": 1,
        "name": name,
        "task": task,
        "dataset": {**dataset, "source": f"data/{name}.jsonl", **fields.pop("dataset", {})},
        "prompt": {"template": template, **fields.pop("prompt", {})},
        "metrics": list(metrics),
        "item_pass": {"metric": metric, "min": minimum},
        **fields,
    }


DOCUMENT_END = "\n...\n"  # what PyYAML writes after a lone scalar


class _OneLineDumper(yaml.SafeDumper):
    """Writes text holding a line break double-quoted, with escapes, so that every value stays on one line."""

    def represent_str(self, text: str) -> yaml.ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:str", text, style='"' if text.splitlines() != [text] else None)


_OneLineDumper.add_representer(str, _OneLineDumper.represent_str)


def suite_text(name: str, task: str, **fields: object) -> str:
    """The YAML of `suite_document`: one line per top-level key, each value in flow style, so that line N holds
    the Nth key (vnllmtest, name, task, dataset, prompt, metrics, item_pass, then the other `fields`)."""
    lines = []
    for key, value in suite_document(name, task, **fields).items():
        dumped = yaml.dump(
            value, Dumper=_OneLineDumper, default_flow_style=True, allow_unicode=True, sort_keys=False, width=1 << 30
        )
        lines.append(f"{key}: {dumped.removesuffix(DOCUMENT_END).strip()}\n")
    return "".join(lines)


# A small QA suite over data/NAME.jsonl (squad_v2 records) whose answers need only two new tokens.
SHORT_QA = {"task": "extractive_qa", "generation": {"max_new_tokens": 2}}
QA_SUITE = suite_text("qa", **SHORT_QA)


def short_questions(prefix: str, count: int, city: str = "Hà Nội") -> list[dict]:
    """Records for `SHORT_QA`: ids PREFIX00, PREFIX01, ..., each answered by `city`."""
    return [
        {"id": f"{prefix}{n:02d}", "context": f"{city} số {n}.", "question": "Ở đâu?", "answers": {"text": [city]}}
        for n in range(count)
    ]


def write_suite(root: Path, name: str, suite: str | Mapping) -> Path:
    """`root`/suites/NAME.yaml: `suite` as written, or the `suite_text` of its fields (with `task`)."""
    text = suite if isinstance(suite, str) else suite_text(name, **suite)
    path = root / "suites" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def replay_rows(answers: Mapping[str, str], **fields: object) -> list[dict]:
    """Replay-file rows: one per item id and its reply, each with `fields` (model, suite)."""
    return [{"id": item_id, "prediction": reply, **fields} for item_id, reply in answers.items()]


def write_replay(
    folder: Path, answers: Mapping[str, str] | Sequence[dict] | bytes, name: str = "preds", **fields: object
) -> str:
    """`folder`/NAME.jsonl for the replay backend, and its `--model` spec (relative: runs start in `folder`).
    `answers` maps item ids to replies (each row gets `fields`), or is a list of rows, or the file's bytes."""
    path = folder / f"{name}.jsonl"
    if isinstance(answers, bytes):
        path.write_bytes(answers)
    else:
        write_jsonl(path, replay_rows(answers, **fields) if isinstance(answers, Mapping) else list(answers))
    return f"replay:{path.name}"


def make_project(
    root: Path,
    *,
    suites: Mapping[str, str | Mapping] | None = None,
    records: Mapping[str, Sequence[dict] | bytes] | None = None,
    predictions: Mapping[str, Mapping[str, str] | Sequence[dict] | bytes] | None = None,
    samples: bool = False,
    ini: str = INNER_RUN_INI,
) -> Path:
    """A project to run pytest in: `root`/pytest.ini; with `samples`, the repository's suites/ (sample data
    included); suites/NAME.yaml (see `write_suite`); suites/data/FILE of `records` (JSON Lines, or bytes as
    given); NAME.jsonl replay files of `predictions` (see `write_replay`). `root` is made if missing."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(ini, encoding="utf-8")
    if samples:
        shutil.copytree(REPO / "suites", root / "suites")
    for name, suite in (suites or {}).items():
        write_suite(root, name, suite)
    for file, content in (records or {}).items():
        path = root / "suites" / "data" / file
        if isinstance(content, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        else:
            write_jsonl(path, list(content))
    for name, answers in (predictions or {}).items():
        write_replay(root, answers, name)
    return root


@dataclass(frozen=True)
class RunFolder:
    """One run's report folder, read afresh on each access: summary.json, items.jsonl and the reports."""

    path: Path

    @property
    def summary(self) -> dict:
        return json.loads(self.text("summary.json"))

    @property
    def manifest(self) -> dict:
        return self.summary["manifest"]

    @property
    def results(self) -> list[dict]:
        return self.summary["results"]

    @property
    def gates(self) -> list[dict]:
        """Every gate of every result (suite and model), in the summary's order."""
        return [gate for result in self.results for gate in result["gates"]]

    @property
    def metrics(self) -> dict[tuple[str, str, str], float | None]:
        """Each metric's value by (suite, model, metric)."""
        return {(r["suite"], r["model"], name): m["value"] for r in self.results for name, m in r["metrics"].items()}

    @property
    def items(self) -> list[dict]:
        lines = self.text("items.jsonl").split("\n")  # JSON Lines: only \n ends a line (never U+2028)
        return [json.loads(line) for line in lines if line]

    def item(self, item_id: str, suite: str | None = None) -> dict:
        """The one item with this id (of this suite, where given)."""
        [found] = [item for item in self.items if item["id"] == item_id and suite in (None, item["suite"])]
        return found

    @property
    def markdown(self) -> str:
        return self.text("summary.md")

    @property
    def html(self) -> str:
        return self.text("report.html")

    def text(self, name: str) -> str:
        return (self.path / name).read_text("utf-8")


def run_folders(root: Path, report_dir: str = "reports") -> list[RunFolder]:
    """The runs under `root`/`report_dir`, oldest first (folders named YYYYmmdd-HHMMSS[-N])."""
    folders = sorted((root / report_dir).iterdir(), key=lambda path: (path.name[:15], int(path.name[16:] or 0)))
    return [RunFolder(folder) for folder in folders]


def cold_then_warm(project: Any, *args: str) -> tuple[RunFolder, RunFolder]:
    """Runs `args` twice in pytest subprocesses of the `project` (pytester): cold, then from the warm cache;
    checks that the runs agree (random weights may fail gates) and that only the cold one held torch,
    transformers or tokenizers (tests/modules_seen.py, as the project's conftest); gives both run folders."""
    project.makeconftest(Path(__file__).with_name("modules_seen.py").read_text("utf-8"))
    cold = project.runpytest_subprocess(*args)
    warm = project.runpytest_subprocess(*args)
    assert cold.ret == warm.ret and cold.ret in (0, 1)
    assert "error" not in warm.parseoutcomes() and cold.parseoutcomes() == warm.parseoutcomes()
    seen = [json.loads(line) for line in (project.path / "modules-seen.jsonl").read_text("utf-8").splitlines()]
    assert seen == [["tokenizers", "torch", "transformers"], []]
    first, second = run_folders(project.path)
    return first, second


def read_run(root: Path, report_dir: str = "reports") -> RunFolder:
    """The newest run under `root`/`report_dir`."""
    runs = run_folders(root, report_dir)
    assert runs, f"no run folder under {root / report_dir}"
    return runs[-1]


CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _vietnamese_corpus() -> list[str]:
    """Our own sample texts, to train a tokenizer that knows Vietnamese syllables."""
    lines = []
    for name in ("vmlu_sample.jsonl", "visquad2_sample.jsonl"):
        for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            lines += [record.get("question", ""), record.get("context", ""), *record.get("choices", [])]
    lines += (REPO / "tests" / "data" / "vtsnlp_rows.csv").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line]


def build_tiny_model(folder: Path, *, seed: int = 0, chat_template: str | None = CHATML) -> Path:
    """Save a random-weight Qwen3ForCausalLM (hidden 64) and a trained BPE tokenizer to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        _vietnamese_corpus(),
        trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=specials[1:2]
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        initializer_range=0.2,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = Qwen3ForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_vision_language_model(folder: Path, text_model: Path) -> Path:
    """A random-weight Qwen3-VL (image-text-to-text) checkpoint sharing `text_model`'s tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(text_model)
    text = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=2048, tie_word_embeddings=True,
        rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True},
    )
    vision = dict(
        depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=16,
        spatial_merge_size=2, temporal_patch_size=2, deepstack_visual_indexes=[0],
    )
    config = Qwen3VLConfig(
        text_config=text, vision_config=vision, image_token_id=5, video_token_id=6, vision_start_token_id=7,
        vision_end_token_id=8, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen3VLForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_lora_adapter(folder: Path, base: Path) -> Path:
    """A LoRA adapter for `base` with random (non-zero) weights, so it changes the model's outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def cached_rows(cache_dir: Path) -> int:
    """Predictions committed to the cache in `cache_dir` so far (another process may be writing)."""
    path = cache_dir / "predictions.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        except sqlite3.OperationalError:  # the table is being created
            return 0


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def load_data_with_little_memory(suite: Path, report: str, headroom_mb: int = 200) -> str:
    """Load `suite`'s data in a child process whose address space may grow only `headroom_mb` past its
    size at start (RLIMIT_AS), and return what `report` (Python code over `entries`, or run on DataError
    as `exc`) printed: proof that a loader never holds more than its bound."""
    import subprocess
    import sys

    script = (
        "import pathlib, resource\n"
        "from vnllmtest.loaders import DataError, DataOptions, load_data; from vnllmtest.suite import load_suite\n"
        "size = int(pathlib.Path('/proc/self/status').read_text().split('VmSize:')[1].split()[0]) << 10\n"
        f"resource.setrlimit(resource.RLIMIT_AS, (size + ({headroom_mb} << 20),) * 2)\n"
        f"try: entries = load_data(load_suite(pathlib.Path({str(suite)!r})), DataOptions()).entries\n"
        "except DataError as exc: entries = exc\n"
        f"print({report})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


class ScriptedJudge(Backend):
    """A judge model whose replies are written in advance, (text, finish_reason) in call order."""

    cacheable = False

    def __init__(self, replies: list[tuple[str, str]], plain: bool = False):
        self.label = self.fingerprint = "scripted"
        self.plain_prompts = plain
        self.replies = list(replies)
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        self.requests += requests
        return [Generation(*self.replies.pop(0), new_tokens=37) for _ in requests]
