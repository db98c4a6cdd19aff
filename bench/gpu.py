"""Throughput on one GPU: a random-weight model with the shape of Qwen3-8B (36 layers, hidden 4096,
GQA 32/8; the bundled Gemma tokenizer, so a 262k vocabulary) in fp16. Runs, each in its own process:
vnllmtest against the raw loop on VMLU-format questions with the bundled prompt in log-likelihood
mode (benchmark 1), the published batch-1 protocol (benchmark 3), and the raw loop's batched
`generate` on ViQuAD-format prompts with a dynamic KV cache, a static one, and a static one compiled.

    python bench/gpu.py [--shape qwen3-8b|tiny] [--items 744] [--batch-size 16] [--tokenizer DIR]

`--shape tiny` runs the same steps with a two-layer model, on the CPU when there is no GPU (to try
the script). The questions are our own sample records, repeated with new ids. Prints Markdown
tables with items/s, prompt tokens/s, peak RSS and peak GPU memory (nvidia-smi, whole card)."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from common import SAMPLES, Measured, measure, table, vmlu_records
from throughput import write_suite

REPO = Path(__file__).resolve().parents[1]
SHAPES = {
    "qwen3-8b": {
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
}


def build_model(folder: Path, shape: str, tokenizer_dir: Path | None, device: str) -> None:
    """A random-weight Qwen3 causal LM of the given shape, saved in fp16 (fp32 on the CPU). Runs in
    a child process: the competitors are forked from this one and inherit its peak RSS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    if tokenizer_dir is None:
        from vnllmtest.backends.bundled import materialize

        tokenizer_dir = materialize("gemma3-270m")[0]

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SHAPES[shape],
    )
    torch.manual_seed(0)
    dtype = torch.float16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters, {dtype}", flush=True)


def write_project(folder: Path, count: int) -> Path:
    """The VMLU suite (log-likelihood) over `count` questions in a data folder, and as many
    ViQuAD-format prompts for the raw loop's `generate` (returned)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n", "utf-8")
    write_suite(folder, "vmlu.yaml", "vmlu_gpu", {"mode": "loglikelihood"}, None)
    (folder / "data" / "vmlu").mkdir(parents=True)
    with (folder / "data" / "vmlu" / "valid.jsonl").open("w", encoding="utf-8") as records:
        records.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in vmlu_records(count))
    passages = [json.loads(line) for line in (SAMPLES / "visquad2_sample.jsonl").read_text("utf-8").splitlines()]
    rows = folder / "generate.jsonl"
    with rows.open("w", encoding="utf-8") as handle:
        for number in range(count):
            source = passages[number % len(passages)]
            prompt = f"Đoạn văn: {source['context']}\nCâu hỏi: {source['question']}\nTrả lời:"
            handle.write(json.dumps({"id": str(number), "prompt": prompt}, ensure_ascii=False) + "\n")
    return rows


def card_name() -> str | None:
    """The GPU's name as nvidia-smi gives it; None without a GPU."""
    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    try:
        names = subprocess.run(query, capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return None
    return names[0].strip() or None


class GpuMemory:
    """Peak memory used on the card while a command runs, polled from nvidia-smi (0 without one)."""

    def __init__(self):
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.2):
            try:
                used = subprocess.run(query, capture_output=True, text=True, check=True).stdout.split()
            except (OSError, subprocess.CalledProcessError):
                return
            self.peak = max(self.peak, float(used[0]) if used else 0.0)

    def __enter__(self) -> GpuMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(name: str, command: list[str], cwd: Path, count: int) -> Measured:
    with GpuMemory() as gpu:
        seconds, peak, _ = measure(command, cwd)
    print(f"{name}: {seconds:.1f} s", flush=True)
    return Measured(name, count, seconds, peak, note=f"GPU peak {gpu.peak / 1024:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen3-8b")
    parser.add_argument("--items", type=int, default=744)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--protocol-items", type=int, default=100)
    parser.add_argument("--generate-items", type=int, default=256)
    parser.add_argument("--tokenizer", type=Path, help="a tokenizer folder (default: the bundled Gemma's)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-gpu"))
    options = parser.parse_args()
    card = card_name()
    device = "cuda" if card else "cpu"
    shutil.rmtree(options.workdir, ignore_errors=True)
    generate_rows = write_project(options.workdir, options.items)
    model_dir = options.workdir / "model"
    builder = multiprocessing.get_context("spawn").Process(
        target=build_model, args=(model_dir, options.shape, options.tokenizer, device)
    )
    builder.start()
    builder.join()
    if builder.exitcode:
        raise SystemExit(f"building the {options.shape} model failed")
    dtype = "float16" if device == "cuda" else "float32"
    size = str(options.batch_size)
    reports = options.workdir / "reports"
    pytest = [sys.executable, "-m", "pytest", "suites/vmlu_gpu.yaml", "--model", str(model_dir), "-q"]
    pytest += ["--data-dir", str(options.workdir / "data")]
    pytest += ["-p", "no:cacheprovider", "--no-cache", "--report-dir", str(reports), "--show-misses", "0"]
    pytest += ["--device", device, "--dtype", dtype, "--quant", "none", "--batch-size", size]
    rows = [timed("vnllmtest (pytest, log-likelihood)", pytest, options.workdir, options.items)]
    [run] = list(reports.iterdir())
    items_file = run / "items.jsonl"
    raw = [sys.executable, str(REPO / "bench" / "raw_loop.py")]
    common = ["--model-dir", str(model_dir), "--device", device, "--dtype", dtype]
    choices = [*raw, "choices", str(items_file), str(options.workdir / "raw.jsonl"), *common, "--batch-size", size]
    rows.append(timed("raw loop (batches longest first)", [*choices, "--sort"], options.workdir, options.items))
    limit = str(options.protocol_items)
    protocol = [*raw, "protocol", str(items_file), str(options.workdir / "protocol.jsonl"), *common, "--limit", limit]
    rows.append(
        timed("published protocol (batch 1)", [*protocol, "--max-new-tokens", "8"], options.workdir, int(limit))
    )
    print(
        f"\n### {options.shape} shape, {dtype}, {card or 'CPU'}: VMLU format, {options.items} questions, batch {size}\n"
    )
    print(table(rows, None))
    rate = [row.items / row.seconds for row in rows]
    print(f"\nvnllmtest vs raw loop: {rate[0] / rate[1]:.2f}x the items/s; vs the protocol: {rate[0] / rate[2]:.1f}x")
    count = str(options.generate_items)
    generate = [*raw, "generate", str(generate_rows), str(options.workdir / "gen.jsonl"), *common, "--limit", count]
    generate += ["--batch-size", size, "--max-new-tokens", "32", "--sort"]
    variants = [("dynamic KV cache", []), ("static KV cache", ["--cache", "static", "--no-compile"])]
    variants.append(("static KV cache, compiled", ["--cache", "static"]))
    rows = [timed(name, [*generate, *extra], options.workdir, int(count)) for name, extra in variants]
    print(f"\n### Batched generate (32 new tokens), {count} ViQuAD-format prompts, batch {size}, {card or 'CPU'}\n")
    print(table(rows, None))


if __name__ == "__main__":
    main()
