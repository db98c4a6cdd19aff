"""The competitors vnllmtest is measured against: a minimal hand-written transformers loop over the
same prompts (read from a vnllmtest items.jsonl), in one of three ways.

    python bench/raw_loop.py choices  ITEMS.jsonl OUT.jsonl --model-dir DIR --batch-size 16 [--sort]
    python bench/raw_loop.py generate ITEMS.jsonl OUT.jsonl --model-dir DIR --batch-size 16 --max-new-tokens 32
    python bench/raw_loop.py protocol ITEMS.jsonl OUT.jsonl --model-dir DIR --max-new-tokens 8 --limit 100

`choices`: one forward pass per batch, the answer is the option letter most likely as the next token
(the probabilities of "A" and " A" added, as vnllmtest's default does). `generate`: batched greedy
generation. `protocol`: the published scripts' way, one `generate` call per item at batch size 1,
then the first option letter in the reply. `--sort` batches the prompts longest first, as vnllmtest
does."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def batches(rows: list[dict], size: int) -> list[list[dict]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def encode(tokenizer, prompts: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    encoded = tokenizer(prompts, padding=True, return_tensors="pt").to(device)
    encoded["position_ids"] = (encoded["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    return encoded


@torch.inference_mode()
def choices(model, tokenizer, rows: list[dict], batch_size: int) -> list[str]:
    answers = []
    for batch in batches(rows, batch_size):
        encoded = encode(tokenizer, [row["prompt"] for row in batch], model.device)
        logits = model(**encoded, logits_to_keep=1).logits[:, -1, :]
        for row_logprobs, row in zip(torch.log_softmax(logits.float(), dim=-1), batch):
            labels = row["labels"]
            spellings = [
                sorted({tokenizer(text, add_special_tokens=False).input_ids[0] for text in (label, f" {label}")})
                for label in labels
            ]
            scores = [torch.logsumexp(row_logprobs[ids], dim=0).item() for ids in spellings]
            answers.append(labels[scores.index(max(scores))])
    return answers


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    rows: list[dict],
    batch_size: int,
    max_new_tokens: int,
    cache: str = "dynamic",
    compile: bool = True,
) -> list[str]:
    """Static caches are compiled by `generate` on GPUs unless `compile` is off."""
    outputs = []
    for batch in batches(rows, batch_size):
        encoded = encode(tokenizer, [row["prompt"] for row in batch], model.device)
        del encoded["position_ids"]  # generate derives positions from the attention mask
        tokens = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            cache_implementation=None if cache == "dynamic" else cache,
            disable_compile=not compile,
        )
        for row in tokens[:, encoded["input_ids"].shape[1] :]:
            outputs.append(tokenizer.decode(row, skip_special_tokens=True).split("\n")[0].strip())
    return outputs


def protocol(model, tokenizer, rows: list[dict], max_new_tokens: int) -> list[str]:
    replies = generate(model, tokenizer, rows, 1, max_new_tokens)
    answers = []
    for reply, row in zip(replies, rows):
        found = re.search(rf"\b([{''.join(row['labels'])}])\b", reply)
        answers.append(found.group(1) if found else "")
    return answers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["choices", "generate", "protocol"])
    parser.add_argument("items", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--sort", action="store_true", help="batch the prompts longest first (less padding)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--cache", choices=["dynamic", "static"], default="dynamic", help="generate's KV cache")
    parser.add_argument("--no-compile", action="store_true", help="keep generate from compiling a static cache")
    options = parser.parse_args()
    rows = [json.loads(line) for line in options.items.read_text("utf-8").splitlines() if line.strip()]
    rows = [{"id": r["id"], "prompt": r["prompt"], "labels": list(r.get("choice_logprobs") or {})} for r in rows]
    rows = rows[: options.limit]
    tokenizer = AutoTokenizer.from_pretrained(options.model_dir, padding_side="left")
    if options.sort:
        rows.sort(key=lambda row: len(tokenizer(row["prompt"]).input_ids), reverse=True)
    dtype = getattr(torch, options.dtype)
    model = AutoModelForCausalLM.from_pretrained(options.model_dir, dtype=dtype).to(options.device).eval()
    if options.mode == "choices":
        answers = choices(model, tokenizer, rows, options.batch_size)
    elif options.mode == "generate":
        answers = generate(
            model, tokenizer, rows, options.batch_size, options.max_new_tokens, options.cache, not options.no_compile
        )
    else:
        answers = protocol(model, tokenizer, rows, options.max_new_tokens)
    with options.out.open("w", encoding="utf-8") as handle:
        for row, answer in zip(rows, answers):
            handle.write(json.dumps({"id": row["id"], "answer": answer}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
