"""Throughput of vnllmtest against a raw transformers loop, the published one-item-at-a-time protocol
and (when given) lm-evaluation-harness, on the bundled Gemma 3 270M and the real VMLU / ViQuAD records,
side by side in one invocation (same model, items, prompts and batch size). Needs ../shared/data.

    python bench/throughput.py --data-dir ../shared/data [--batch-size 16] [--qa-items 200] [--lm-eval EXE]

Prints Markdown tables: items/s, prompt tokens/s, peak RSS and the score of each competitor; the
speed-up over the published protocol; a warm-cache re-run; batch-size invariance of greedy outputs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import yaml
from common import Measured, measure, table

REPO = Path(__file__).resolve().parents[1]
MODEL = "gemma3-270m"


def write_suite(workdir: Path, source: str, name: str, scoring: dict, sampling: dict | None) -> None:
    """A copy of a bundled suite under another name, with its scoring mode and sampling replaced; in
    log-likelihood mode its `accuracy` (generate+extract) becomes `accuracy_loglik`."""
    text = (REPO / "suites" / source).read_text("utf-8")
    if scoring.get("mode") == "loglikelihood":
        text = re.sub(r"\baccuracy\b", "accuracy_loglik", text)
    spec = yaml.safe_load(text)
    spec["name"] = name
    spec["scoring"] = {**spec.get("scoring", {}), **scoring}
    spec["dataset"].pop("sample", None)
    spec["dataset"].pop("sampling", None)
    if sampling:
        spec["dataset"]["sampling"] = sampling
    spec["gates"] = [gate for gate in spec.get("gates", []) if "max_drop" not in gate]
    (workdir / "suites").mkdir(parents=True, exist_ok=True)
    (workdir / "suites" / f"{name}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")


class Bench:
    def __init__(self, options: argparse.Namespace):
        self.options = options
        self.workdir: Path = options.workdir
        from vnllmtest.backends.bundled import materialize

        self.model_dir = materialize(MODEL)[0]

    def vnllmtest(self, suite: str, *extra: str) -> tuple[float, float, list[dict], dict]:
        """One pytest run; its wall time, peak RSS, items and summary."""
        reports = self.workdir / "reports"
        command = [
            sys.executable,
            "-m",
            "pytest",
            f"suites/{suite}.yaml",
            "--model",
            MODEL,
            "-q",
            "-p",
            "no:cacheprovider",
        ]
        command += ["--data-dir", str(self.options.data_dir), "--report-dir", str(reports), "--show-misses", "0"]
        command += ["--cache-dir", str(self.workdir / "cache"), *extra]
        seconds, peak, _ = measure(command, self.workdir)
        run = sorted(reports.iterdir())[-1]
        items = [json.loads(line) for line in (run / "items.jsonl").read_text("utf-8").splitlines()]
        return seconds, peak, items, json.loads((run / "summary.json").read_text("utf-8"))

    def raw(self, mode: str, items_file: Path, *extra: str) -> tuple[float, float, dict[str, str]]:
        out = self.workdir / f"raw-{mode}.jsonl"
        command = [sys.executable, str(REPO / "bench" / "raw_loop.py"), mode, str(items_file), str(out)]
        command += ["--model-dir", str(self.model_dir), *extra]
        seconds, peak, _ = measure(command, self.workdir)
        answers = {row["id"]: row["answer"] for row in map(json.loads, out.read_text("utf-8").splitlines())}
        return seconds, peak, answers

    def prompt_tokens(self, items: list[dict]) -> int:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        return sum(len(tokenizer(item["prompt"]).input_ids) for item in items)


def save_items(items: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), "utf-8")
    return path


def mean_metric(items: list[dict], metric: str) -> float:
    values = [item["metrics"][metric] for item in items if metric in item["metrics"]]
    return 100 * sum(values) / len(values)


def multiple_choice(bench: Bench) -> None:
    size = str(bench.options.batch_size)
    seconds, peak, items, _ = bench.vnllmtest("vmlu_ll", "--batch-size", size, "--refresh-cache")
    items_file = save_items(items, bench.workdir / "vmlu-items.jsonl")
    chosen = {item["id"]: item["answer"] for item in items}
    gold = {item["id"]: item["references"][0] for item in items}
    accuracy = mean_metric(items, "accuracy_loglik")
    rows = [Measured("vnllmtest (pytest, log-likelihood, cold cache)", len(items), seconds, peak, accuracy)]
    for name, extra in (("file order", ()), ("longest first", ("--sort",))):
        seconds_taken, raw_peak, raw = bench.raw("choices", items_file, "--batch-size", size, *extra)
        agreement = 100 * sum(raw[i] == chosen[i] for i in raw) / len(raw)
        raw_accuracy = 100 * sum(raw[i] == gold[i] for i in raw) / len(raw)
        rows.append(
            Measured(
                f"raw transformers loop (same prompts, batches in {name})",
                len(raw),
                seconds_taken,
                raw_peak,
                raw_accuracy,
                f"per-item agreement {agreement:.1f}%",
            )
        )
    warm_seconds, warm_peak, warm_items, warm_summary = bench.vnllmtest("vmlu_ll", "--batch-size", size)
    loads = warm_summary["manifest"]["models"].get(MODEL, {}).get("loads", [])
    rows.append(
        Measured(
            "vnllmtest, warm cache",
            len(warm_items),
            warm_seconds,
            warm_peak,
            mean_metric(warm_items, "accuracy_loglik"),
            f"model loads: {len(loads)}",
        )
    )
    limit = bench.options.protocol_items
    protocol_seconds, protocol_peak, protocol = bench.raw(
        "protocol", items_file, "--max-new-tokens", "8", "--limit", str(limit)
    )
    protocol_accuracy = 100 * sum(protocol[i] == gold[i] for i in protocol) / len(protocol)
    rows.append(
        Measured(
            "published protocol (batch 1, generate per item)",
            len(protocol),
            protocol_seconds,
            protocol_peak,
            protocol_accuracy,
            f"first {limit} items",
        )
    )
    print(f"\n### VMLU, {len(items)} records, log-likelihood, batch size {size}\n")
    print(table(rows, bench.prompt_tokens(items)))
    speed = len(items) / seconds
    print(
        f"\nvnllmtest vs raw loop: {100 * (seconds / rows[1].seconds - 1):+.1f}% wall time (file order), "
        f"{100 * (seconds / rows[2].seconds - 1):+.1f}% (longest first); "
        f"speed-up over the published protocol: {speed / (len(protocol) / protocol_seconds):.1f}x; "
        f"warm cache vs cold: {seconds / warm_seconds:.1f}x faster"
    )
    if bench.options.lm_eval:
        against_lm_eval(bench, size)


def against_lm_eval(bench: Bench, size: str) -> None:
    """vnllmtest scoring the labels as lm-eval does (" A" only), then lm-eval, on the same prompts."""
    seconds, peak, items, _ = bench.vnllmtest("vmlu_spaced", "--batch-size", size, "--refresh-cache")
    chosen = {item["id"]: item["answer"] for item in items}
    gold = {item["id"]: item["references"][0] for item in items}
    rows = [
        Measured("vnllmtest (label_tokens: spaced)", len(items), seconds, peak, mean_metric(items, "accuracy_loglik")),
        lm_eval_row(bench, items, size, chosen, gold),
    ]
    print(f'\n### Against lm-evaluation-harness: VMLU, {len(items)} records, batch size {size}, " A" scored\n')
    print(table(rows, bench.prompt_tokens(items)))
    speed, memory = rows[1].seconds / seconds, peak / rows[1].peak_mb
    print(f"\nvnllmtest vs lm-eval: {speed:.1f}x the items/s at {memory:.2f}x the peak RSS")


LM_EVAL_TASK = """task: vnllmtest_vmlu
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}}}}}
test_split: test
output_type: multiple_choice
doc_to_text: prompt
doc_to_choice: labels
doc_to_target: gold
target_delimiter: " "
metric_list: [{{metric: acc}}]
"""


def plain_copy(model_dir: Path, folder: Path) -> Path:
    """The converted model without the GGUF note in its config, which lm-eval's loader refuses."""
    copy = folder / "model"
    copy.mkdir(exist_ok=True)
    for source in model_dir.iterdir():
        target = copy / source.name
        if source.name == "config.json":
            config = json.loads(source.read_text("utf-8"))
            config.pop("quantization_config", None)
            target.write_text(json.dumps(config), "utf-8")
        elif not target.exists():
            target.symlink_to(source)
    return copy


def lm_eval_row(bench: Bench, items: list[dict], size: str, chosen: dict, gold: dict) -> Measured:
    """lm-evaluation-harness on the same rendered prompts, through a local task, at the same batch size."""
    folder = bench.workdir / "lm-eval"
    folder.mkdir(exist_ok=True)
    docs = folder / "docs.jsonl"
    rows = []
    for item in items:
        labels = list(item["choice_logprobs"])
        rows.append(
            {"id": item["id"], "prompt": item["prompt"], "labels": labels, "gold": labels.index(gold[item["id"]])}
        )
    save_items(rows, docs)
    (folder / "vnllmtest_vmlu.yaml").write_text(LM_EVAL_TASK.format(data=docs), "utf-8")
    command = [
        bench.options.lm_eval,
        "--model",
        "hf",
        "--model_args",
        f"pretrained={plain_copy(bench.model_dir, folder)},dtype=float32",
    ]
    command += ["--tasks", "vnllmtest_vmlu", "--include_path", str(folder), "--batch_size", size, "--device", "cpu"]
    command += ["--output_path", str(folder / "out"), "--log_samples"]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    seconds, peak, _ = measure(command, bench.workdir, environment, accepted=(0,))
    [samples] = (folder / "out").rglob("samples_vnllmtest_vmlu_*.jsonl")
    answers = {}
    for line in samples.read_text("utf-8").splitlines():
        sample = json.loads(line)
        scores = [float(response[0]) for response in sample["filtered_resps"]]  # logged as text
        answers[sample["doc"]["id"]] = sample["doc"]["labels"][scores.index(max(scores))]
    agreement = 100 * sum(answers[i] == chosen[i] for i in answers) / len(answers)
    accuracy = 100 * sum(answers[i] == gold[i] for i in answers) / len(answers)
    note = f"per-item agreement {agreement:.1f}%"
    return Measured("lm-evaluation-harness (same prompts, local task)", len(answers), seconds, peak, accuracy, note)


def generation(bench: Bench) -> None:
    size = str(bench.options.batch_size)
    seconds, peak, items, _ = bench.vnllmtest("visquad_gen", "--batch-size", size, "--refresh-cache")
    items_file = save_items(items, bench.workdir / "visquad-items.jsonl")
    budget = str(yaml.safe_load((REPO / "suites" / "visquad2.yaml").read_text("utf-8"))["generation"]["max_new_tokens"])
    raw_seconds, raw_peak, raw = bench.raw("generate", items_file, "--batch-size", size, "--max-new-tokens", budget)
    same = sum(raw[item["id"]] == (item["output"] or "").strip() for item in items)
    rows = [
        Measured("vnllmtest (pytest, generate)", len(items), seconds, peak, mean_metric(items, "f1")),
        Measured(
            "raw transformers loop (batched generate)",
            len(raw),
            raw_seconds,
            raw_peak,
            None,
            f"identical outputs: {same}/{len(items)}",
        ),
    ]
    print(f"\n### ViQuAD 2.0, {len(items)} records, generate (max {budget} new tokens), batch size {size}\n")
    print(table(rows, bench.prompt_tokens(items)))
    print(f"\nvnllmtest vs raw loop: {100 * (seconds / raw_seconds - 1):+.1f}% wall time")


def invariance(bench: Bench) -> None:
    outputs = {}
    for size in ("1", "8", "auto"):
        _, _, items, _ = bench.vnllmtest("vmlu_gen", "--batch-size", size, "--no-cache")
        outputs[size] = {item["id"]: item["output"] for item in items}
    reference = outputs["1"]
    print(f"\n### Batch-size invariance: greedy outputs of {len(reference)} VMLU items\n")
    print("| Batch size | Outputs identical to batch size 1 |\n| --- | ---: |")
    for size, found in outputs.items():
        print(f"| {size} | {sum(found[i] == reference[i] for i in reference)}/{len(reference)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--qa-items", type=int, default=200)
    parser.add_argument("--protocol-items", type=int, default=100)
    parser.add_argument("--invariance-items", type=int, default=40)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-throughput"))
    parser.add_argument("--only", choices=["mc", "generate", "invariance"])
    parser.add_argument("--lm-eval", metavar="EXECUTABLE", help="an lm_eval command to run beside (its own venv)")
    options = parser.parse_args()
    options.data_dir = options.data_dir.resolve()
    shutil.rmtree(options.workdir, ignore_errors=True)
    options.workdir.mkdir(parents=True)
    (options.workdir / "pytest.ini").write_text("[pytest]\n", "utf-8")
    write_suite(options.workdir, "vmlu.yaml", "vmlu_ll", {"mode": "loglikelihood"}, None)
    write_suite(options.workdir, "vmlu.yaml", "vmlu_spaced", {"mode": "loglikelihood", "label_tokens": "spaced"}, None)
    write_suite(options.workdir, "visquad2.yaml", "visquad_gen", {}, {"count": options.qa_items, "seed": 42})
    sample = {"count": options.invariance_items, "seed": 42}
    write_suite(options.workdir, "vmlu.yaml", "vmlu_gen", {"mode": "generate"}, sample)
    bench = Bench(options)
    import torch
    import transformers

    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"model {MODEL} (float32, CPU)"
    )
    for name, part in (("mc", multiple_choice), ("generate", generation), ("invariance", invariance)):
        if options.only in (None, name):
            part(bench)


if __name__ == "__main__":
    main()
