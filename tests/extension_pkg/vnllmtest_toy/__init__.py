"""A third-party vnllmtest extension, for the tests: a dataset record format (`toy_lines`, one
"question | answer" per line of a .txt file), a backend kind (`vong:`, an in-process model that
repeats what follows the last colon of its prompt) and a model-graded metric (`toy_fluency`, the
probability a scoring model gives to "A" (fluent) against "B"). Registered through the entry points
of the dist-info next to this folder; vnllmtest never imports this package by name."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from vnllmtest.backends.base import Backend, Generation, Request
from vnllmtest.backends.registry import ModelSpec
from vnllmtest.extensions import BackendKind, DatasetAdapter, Metric
from vnllmtest.loaders.base import Item, RawRecord, RecordError, require_text
from vnllmtest.loaders.paths import DataRoot


def read_lines(path: Path, root: DataRoot) -> Iterator[RawRecord]:
    """One record per non-empty line, "question | answer"; a line without the bar is a bad record."""
    text = root.check(path).read_text("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{path}:{number}"
        question, bar, answer = line.partition("|")
        if not bar:
            yield RawRecord(origin, None, "expected 'question | answer'")
            continue
        yield RawRecord(origin, {"id": f"dong-{number}", "cau_hoi": question.strip(), "dap_an": answer.strip()})


def to_item(record: RawRecord, options: Mapping[str, Any]) -> Item:
    data = record.data or {}
    answer = require_text(data, "dap_an")
    if not answer.strip():
        raise RecordError("field 'dap_an': empty answer")
    question = require_text(data, "cau_hoi")
    return Item(id=data["id"], fields={"cau_hoi": question}, references=(answer,), origin=record.origin)


ADAPTER = DatasetAdapter(to_item, read_records=read_lines)


class EchoBackend(Backend):
    """Answers with what follows the last colon of the prompt's last line."""

    def __init__(self, spec: ModelSpec):
        self.label = spec.label
        self.fingerprint = f"vong:{hashlib.sha256(spec.target.encode()).hexdigest()[:12]}"

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        lines = [request.prompt.splitlines()[-1] for request in requests]
        return [Generation(line.rpartition(":")[2].strip(), "stop", 1) for line in lines]


def load_echo(spec: ModelSpec, hf_settings: Any, server_settings: Any) -> Backend:
    return EchoBackend(spec)


BACKEND = BackendKind(load=load_echo)


class FluencyGrader:
    """P("A") / (P("A") + P("B")) for "is this answer fluent Vietnamese?", from the scoring model's
    next-token log-probabilities; None when the model gives none."""

    default_model = "smollm2-135m"

    def score(self, model: Backend, jobs: Sequence[Any], runner: Any, max_new_tokens: int | None) -> list[float | None]:
        requests = [
            Request(
                job.suite.name,
                job.item.id,
                f"Câu trả lời sau có trôi chảy không?\n{job.output}\nA. Có\nB. Không\nĐáp án:",
                ("A", "B"),
                max_new_tokens=1,
            )
            for job in jobs
        ]
        predictions = runner.run(model, requests, "loglikelihood", description=f"toy_fluency by {model.label}")
        return [_share_of_a(prediction.choice_logprobs) for prediction in predictions]


def _share_of_a(logprobs: Mapping[str, float] | None) -> float | None:
    if not logprobs or "A" not in logprobs or "B" not in logprobs:
        return None
    top = max(logprobs["A"], logprobs["B"])
    a, b = math.exp(logprobs["A"] - top), math.exp(logprobs["B"] - top)
    return a / (a + b)


FLUENCY = Metric(
    "continuous", "points", 1, "share of 'fluent' in the scoring model's A/B answer", grader=FluencyGrader()
)
