"""Command-line options of the plugin and the argument types they parse with (read in settings.py)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import pytest

from vnllmtest.backends.base import DEFAULT_MAX_REPLY_BYTES, QUANT_CHOICES, ROUNDS_PER_BATCH
from vnllmtest.loaders import DATA_DIR_ENV

DEFAULT_MODEL = "gemma3-270m"
DEFAULT_JUDGE = "seallms-v3-7b"  # the published protocol's judge


def add_options(parser: pytest.Parser) -> None:
    """vnllmtest's command-line options, in their own --help group."""
    group = parser.getgroup("vnllmtest", "vnllmtest: evaluate LLMs on Vietnamese benchmark suites")
    group.addoption(
        "--model",
        action="append",
        default=[],
        metavar="SPEC",
        help="model to evaluate, repeatable: an alias (gemma3-270m, smollm2-135m, qwen3-8b, qwen3.5-9b, "
        "unicorn-vl-r3, seallms-v3-7b), a hub id owner/name, a local checkpoint folder, "
        "openai:http://HOST:PORT/v1+model=NAME, or replay:PREDICTIONS.jsonl; add +adapter=DIR for a LoRA "
        f"adapter. Default: {DEFAULT_MODEL}.",
    )
    group.addoption(
        "--judge",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"judge model for suites with a judge block, any model spec (repeat for a second judge and "
        f"agreement statistics; the first one's scores count). Default: {DEFAULT_JUDGE}.",
    )
    group.addoption(
        "--scorer-model",
        action="append",
        default=[],
        metavar="METRIC=SPEC",
        help="the model that scores a model-graded metric (one of an installed package's metrics), instead of "
        "the metric's default; loaded once, after every --model.",
    )
    group.addoption(
        "--aliases",
        metavar="FILE",
        help="YAML file of extra or changed model aliases (also [tool.vnllmtest.aliases] in pyproject.toml).",
    )
    group.addoption(
        "--data",
        choices=("full", "sample"),
        default="full",
        help="'full': each suite's declared dataset (with its sampling); 'sample': the small bundled "
        "sample of each suite, run whole (offline). Default: full.",
    )
    group.addoption(
        "--data-dir",
        metavar="DIR",
        help=f"folder with local copies of the datasets (each suite's dataset.local path inside it); "
        f"also ${DATA_DIR_ENV}.",
    )
    group.addoption(
        "--allow-outside-data",
        action="store_true",
        help="let suites read data outside their own folder (dataset.source, dataset.sample) or outside "
        "--data-dir (dataset.local), through '..', absolute paths or symlinks. Off by default, so a shared "
        "suite cannot read other files into prompts and reports.",
    )
    group.addoption(
        "--submission",
        action="store_true",
        help="answer the split whose answers are not public (a suite's submission: block, e.g. VMLU's test "
        "split) and write the leaderboard's CSV (id,answer) into the run's report folder; nothing is scored and "
        "no gate applies. Suites without a submission: block are not run.",
    )
    group.addoption("--limit", type=int, metavar="N", help="evaluate at most N records per suite (deterministic).")
    group.addoption(
        "--batch-size",
        type=parse_batch_size,
        default=8,
        metavar="N|auto",
        help="prompts per model call of local models, or 'auto' (start large); an out-of-memory batch is "
        "retried at half the size, down to 1. Servers (openai:) take --concurrency requests at a time "
        "instead. Default: 8.",
    )
    group.addoption(
        "--max-new-tokens",
        type=int,
        metavar="N",
        help="cap every suite's generation length, the judge's replies too (quick smoke runs).",
    )
    group.addoption("--device", default="auto", help="torch device for local models (auto, cpu, cuda, cuda:1...).")
    group.addoption("--dtype", default="auto", help="weights and compute dtype: auto, float32, float16, bfloat16.")
    group.addoption(
        "--quant",
        choices=QUANT_CHOICES,
        default="auto",
        help="weight quantisation (bitsandbytes): 'auto' is 4-bit nf4 on CUDA GPUs under 24 GB (e.g. a T4), "
        "none elsewhere. Default: auto.",
    )
    group.addoption("--max-memory", metavar="CAPS", help="per-device memory caps, e.g. 0=14GiB,cpu=30GiB.")
    group.addoption(
        "--thinking",
        choices=("on", "off"),
        help="let thinking models think (default: each suite's generation.thinking, off unless set).",
    )
    group.addoption(
        "--trust-remote-code",
        action="store_true",
        help="allow checkpoints to run their own Python code (off by default: it runs with your permissions).",
    )
    group.addoption(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="NAME",
        help="environment variable holding the API key for openai: servers (never logged). Default: OPENAI_API_KEY.",
    )
    group.addoption(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="requests in flight per server (openai:), whatever --batch-size says; finished replies are cached "
        f"every {ROUNDS_PER_BATCH} x N requests. Default: 8.",
    )
    group.addoption(
        "--request-timeout",
        type=parse_positive(float),
        default=120.0,
        metavar="S",
        help="seconds per attempt of a server request, connecting and the whole reply (a retry is a new "
        "attempt). Default: 120.",
    )
    group.addoption(
        "--max-reply-bytes",
        type=parse_positive(int),
        default=DEFAULT_MAX_REPLY_BYTES,
        metavar="N",
        help="the largest model reply kept: a server's reply is read up to N bytes and no further, and a "
        f"longer reply or answer (from any model) is an error on its item, never cached. Default: "
        f"{DEFAULT_MAX_REPLY_BYTES} (4 MiB), several times what 32,768 tokens of JSON-escaped Vietnamese take.",
    )
    group.addoption(
        "--retries",
        type=int,
        default=4,
        metavar="N",
        help="retries of a server request on 429, 5xx or connection errors, with exponential back-off. Default: 4.",
    )
    group.addoption("--cache-dir", metavar="DIR", help="prediction cache folder. Default: <rootdir>/.vnllmtest-cache.")
    group.addoption("--no-cache", action="store_true", help="neither read nor write the prediction cache.")
    group.addoption(
        "--refresh-cache", action="store_true", help="recompute every prediction and overwrite the cached ones."
    )
    group.addoption("--report-dir", default="reports", metavar="DIR", help="where run folders go. Default: reports.")
    group.addoption("--strict-items", action="store_true", help="a missed item fails the run (default: only gates do).")
    group.addoption(
        "--require-gates",
        action="store_true",
        help="every gate must be evaluated, or the run fails: a run of part of a suite (-k, -m, --lf, --deselect, "
        "node ids, --limit below the suite's size) leaves its gates not evaluated, and a max_drop gate is "
        "skipped without --baseline (for CI: a subset never passes silently). Default: such gates are "
        "reported, and only errors and failed gates fail the run.",
    )
    group.addoption(
        "--show-misses",
        type=int,
        default=10,
        metavar="N",
        help="print the details of the first N missed items (default 10; -rm lists them all in one line each).",
    )
    group.addoption("--bootstrap-iterations", type=int, default=1000, metavar="N", help="bootstrap resamples for CIs.")
    group.addoption(
        "--shard-size",
        type=int,
        metavar="N",
        help="with pytest-xdist (-n): split each (suite, model) group into slices of N items, so several "
        "workers share one model's suite (suites a judge or a model-graded metric scores stay whole). Default: one group per worker.",
    )
    group.addoption(
        "--baseline",
        metavar="PATH",
        help="a previous run (its report folder, summary.json or items.jsonl) to compare with, item by item: "
        "paired differences with CIs and p-values, flipped items, and the suites' max_drop gates.",
    )
    group.addoption(
        "--baseline-model",
        metavar="LABEL",
        help="which of the baseline's models to compare with (default: the same label, else its only model).",
    )
    group.addoption(
        "--show-flips",
        type=int,
        default=10,
        metavar="N",
        help="print the first N items that flipped against --baseline (default 10; the report lists all).",
    )


def parse_positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a finite number above 0 of this kind."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a number above 0, got {text[:40]!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def parse_batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
