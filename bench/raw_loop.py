"""The competitors vnllmtest is measured against: a minimal hand-written transformers loop over the
same prompts (read from a vnllmtest items.jsonl), in one of three ways.

    python bench/raw_loop.py choices  ITEMS.jsonl OUT.jsonl --model-dir DIR --batch-size 16
    python bench/raw_loop.py generate ITEMS.jsonl OUT.jsonl --model-dir DIR --batch-size 16 --max-new-tokens 32
    python bench/raw_loop.py protocol ITEMS.jsonl OUT.jsonl --model-dir DIR --max-new-tokens 8 --limit 100

`choices`: one forward pass per batch, the answer is the option letter with the highest next-token
logit. `generate`: batched greedy generation. `protocol`: the published scripts' way, one
`generate` call per item at batch size 1, then the first option letter in the reply."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def batches(rows: list[dict], size: int) -> list[list[dict]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def encode(tokenizer, prompts: list[str]) -> dict[str, torch.Tensor]:
    encoded = tokenizer(prompts, padding=True, return_tensors="pt")
    encoded["position_ids"] = (encoded["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    return encoded


@torch.inference_mode()
def choices(model, tokenizer, rows: list[dict], batch_size: int) -> list[str]:
    answers = []
    for batch in batches(rows, batch_size):
        logits = model(**encode(tokenizer, [row["prompt"] for row in batch]), logits_to_keep=1).logits[:, -1, :]
        for row_logits, row in zip(logits, batch):
            labels = row["labels"]
            ids = [tokenizer(f" {label}", add_special_tokens=False).input_ids[0] for label in labels]
            bare = [tokenizer(label, add_special_tokens=False).input_ids[0] for label in labels]
            best = max(range(len(labels)), key=lambda i: max(row_logits[ids[i]], row_logits[bare[i]]).item())
            answers.append(labels[best])
    return answers


@torch.inference_mode()
def generate(model, tokenizer, rows: list[dict], batch_size: int, max_new_tokens: int) -> list[str]:
    outputs = []
    for batch in batches(rows, batch_size):
        encoded = encode(tokenizer, [row["prompt"] for row in batch])
        del encoded["position_ids"]  # generate derives positions from the attention mask
        tokens = model.generate(
            **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
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
    options = parser.parse_args()
    rows = [json.loads(line) for line in options.items.read_text("utf-8").splitlines() if line.strip()]
    rows = [{"id": r["id"], "prompt": r["prompt"], "labels": list(r.get("choice_logprobs") or {})} for r in rows]
    rows = rows[: options.limit]
    tokenizer = AutoTokenizer.from_pretrained(options.model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(options.model_dir, dtype=torch.float32).eval()
    if options.mode == "choices":
        answers = choices(model, tokenizer, rows, options.batch_size)
    elif options.mode == "generate":
        answers = generate(model, tokenizer, rows, options.batch_size, options.max_new_tokens)
    else:
        answers = protocol(model, tokenizer, rows, options.max_new_tokens)
    with options.out.open("w", encoding="utf-8") as handle:
        for row, answer in zip(rows, answers):
            handle.write(json.dumps({"id": row["id"], "answer": answer}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
