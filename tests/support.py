"""Test helpers: a tiny random-weight Qwen3 model with a Vietnamese BPE tokenizer, JSONL writing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "suites" / "data"

# The pytest.ini of projects run inside tests: without hypothesis's plugin, which imports a module that takes
# over a second to load at the end of every run (and pytester's in-process runs forget it each time).
INNER_RUN_INI = "[pytest]\naddopts = -p no:hypothesispytest\n"
# A judge block with an inline two-criterion rubric, for suites that replay judge replies.
SUMMARY_JUDGE = """judge:
  rubric:
    scale: {min: 1, max: 10}
    criteria:
      - {name: accuracy, label: Độ chính xác, description: Bản tóm tắt nêu đúng sự kiện trong bài báo.}
      - {name: coherence, label: Tính mạch lạc, description: Các câu nối tiếp nhau rõ nghĩa.}
  sees:
    - {title: Bản tóm tắt, text: "{{ output }}"}
"""

# A small QA suite over data/qa.jsonl (squad_v2 records) whose answers need only two new tokens.
QA_SUITE = """vnllmtest: 1
name: qa
task: extractive_qa
dataset: {adapter: squad_v2, source: data/qa.jsonl}
prompt: {template: "{{ context }} {{ question }}"}
generation: {max_new_tokens: 2}
metrics: [exact_match, f1]
item_pass: {metric: f1, min: 0.5}
"""

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
    lines += (SAMPLES / "vtsnlp_sample.csv").read_text(encoding="utf-8").splitlines()
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
