"""Runs requests through a backend in length-sorted batches, with the prediction cache in front."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from vnllmtest.backends.base import Backend, Generation, ModelError, Request
from vnllmtest.cache import PredictionCache, cache_key

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class Prediction:
    """A model's answer to one request, as cached: text, or per-label log-probabilities."""

    mode: str  # "generate" or "loglikelihood"
    text: str
    choice_logprobs: dict[str, float] | None
    finish_reason: str
    new_tokens: int
    cache_key: str | None = None
    cached: bool = False
    error: str | None = None

    def to_cache(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("cache_key", "cached", "error")}


@contextmanager
def _silent_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


class Runner:
    """Computes predictions for many requests at once; the unit of work is a batch."""

    def __init__(self, cache: PredictionCache | None = None, batch_size: int = 8, progress: Progress | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.cache = cache
        self.batch_size = batch_size
        self.progress = progress or _silent_progress

    def run(self, backend: Backend, requests: Sequence[Request], mode: str, description: str = "") -> list[Prediction]:
        """Predictions in request order. `mode` "loglikelihood" falls back to "generate" when the
        backend cannot score options; the mode actually used is recorded in each prediction."""
        if mode == "loglikelihood" and not backend.supports_loglikelihood:
            mode = "generate"
        keys = [self._key(backend, mode, request) for request in requests]
        results: list[Prediction | None] = [None] * len(requests)
        cached = self.cache.get_many(k for k in keys if k) if self.cache and backend.cacheable else {}
        for index, key in enumerate(keys):
            if key in cached:
                results[index] = Prediction(**cached[key], cache_key=key, cached=True)
        pending = [i for i, result in enumerate(results) if result is None]
        pending.sort(key=lambda i: backend.prompt_length(requests[i].prompt), reverse=True)
        with self.progress(description, len(pending)) as advance:
            for start in range(0, len(pending), self.batch_size):
                batch = pending[start : start + self.batch_size]
                computed = self._compute(backend, [requests[i] for i in batch], mode)
                fresh = {}
                for index, prediction in zip(batch, computed):
                    results[index] = replace(prediction, cache_key=keys[index])
                    if prediction.error is None and keys[index]:
                        fresh[keys[index]] = prediction.to_cache()
                if fresh and self.cache is not None:
                    self.cache.put_many(fresh)
                advance(len(batch))
        return [result for result in results if result is not None]

    def _key(self, backend: Backend, mode: str, request: Request) -> str | None:
        if not backend.cacheable:
            return None
        if mode == "loglikelihood":
            return cache_key(backend.fingerprint, mode, request.prompt, labels=list(request.labels))
        return cache_key(
            backend.fingerprint, mode, request.prompt, max_new_tokens=request.max_new_tokens, stop=list(request.stop)
        )

    @staticmethod
    def _compute(backend: Backend, batch: list[Request], mode: str) -> list[Prediction]:
        try:
            if mode == "loglikelihood":
                return [Prediction(mode, "", scores, "stop", 0) for scores in backend.score_choices(batch)]
            return [_from_generation(g) for g in backend.generate(batch)]
        except Exception as exc:  # a crash in one batch becomes an error on its items; others go on
            message = str(exc) if isinstance(exc, ModelError) else (
                f"model '{backend.label}' failed on this batch: {type(exc).__name__}: {exc}"
            )
            return [Prediction(mode, "", None, "error", 0, error=message) for _ in batch]


def _from_generation(generation: Generation) -> Prediction:
    return Prediction("generate", generation.text, None, generation.finish_reason, generation.new_tokens, error=generation.error)
