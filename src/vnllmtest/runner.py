"""Runs requests through a backend in length-sorted batches, with the prediction cache in front; every
answer is bounded in size (a longer one is its item's error, never cached). Nothing here imports torch: a
run answered from the cache never needs it."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from vnllmtest.backends.base import DEFAULT_MAX_REPLY_BYTES, Backend, Generation, ModelError, Request
from vnllmtest.cache import PredictionCache, cache_key
from vnllmtest.clipping import described, shown
from vnllmtest.thinking import opens_thinking, split_thinking
from vnllmtest.timing import phase

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
AUTO_BATCH_START = 32  # the first batch size tried with --batch-size auto; halved on out-of-memory


@dataclass(frozen=True)
class Prediction:
    """A model's answer to one request, as cached: text, or per-label log-probabilities."""

    mode: str  # "generate" or "loglikelihood"
    text: str
    choice_logprobs: dict[str, float] | None
    finish_reason: str
    new_tokens: int
    thinking: str | None = None  # a <think> block, kept for the report, never scored
    thinking_unterminated: bool = False
    thinking_tokens: int = 0
    cache_key: str | None = None
    cached: bool = False
    error: str | None = None

    def to_cache(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("cache_key", "cached", "error")}


@dataclass(frozen=True)
class BackOff:
    """A batch that ran out of memory and was retried at a smaller size."""

    description: str
    failed_size: int
    retry_size: int
    error: str


@contextmanager
def _silent_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


class Runner:
    """Computes predictions for many requests at once; the unit of work is a batch.

    `batch_size` is a number or "auto" (start at AUTO_BATCH_START); a backend that paces its own
    requests (a server: --concurrency at a time) gets batches of its `preferred_batch_size` instead.
    A batch that runs out of memory is retried at half the size, down to 1, and the smaller size is kept
    from then on; every back-off is recorded in `back_offs`. `refresh` recomputes cached entries and
    overwrites them. An answer (with its thinking) over `max_output_bytes` is an error on its item, and
    is neither cached nor taken from the cache.
    """

    def __init__(
        self,
        cache: PredictionCache | None = None,
        batch_size: int | str = 8,
        progress: Progress | None = None,
        refresh: bool = False,
        max_output_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ):
        if batch_size != "auto" and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError("batch_size must be at least 1, or 'auto'")
        self.cache = cache
        self.batch_size = AUTO_BATCH_START if batch_size == "auto" else batch_size
        self.progress = progress or _silent_progress
        self.refresh = refresh
        self.max_output_bytes = max_output_bytes
        self.back_offs: list[BackOff] = []

    def run(self, backend: Backend, requests: Sequence[Request], mode: str, description: str = "") -> list[Prediction]:
        """Predictions in request order. A backend that cannot score options gets "loglikelihood"
        predictions without log-probabilities (never a generation in their place): those items are unscored."""
        if mode == "loglikelihood" and not backend.supports_loglikelihood:
            return [Prediction(mode, "", None, "no_logprobs", 0) for _ in requests]
        keys = [self._key(backend, mode, request) for request in requests]
        results: list[Prediction | None] = [None] * len(requests)
        use_cache = self.cache is not None and backend.cacheable
        cached = self.cache.get_many(k for k in keys if k) if use_cache and not self.refresh else {}
        for index, key in enumerate(keys):
            if key in cached:
                results[index] = self._within_bound(_from_cache(cached[key], key, self.cache))
        pending = [i for i, result in enumerate(results) if result is None]
        pending.sort(key=lambda i: backend.batch_order(requests[i].prompt))
        preferred = backend.preferred_batch_size
        if preferred is not None and (isinstance(preferred, bool) or not isinstance(preferred, int) or preferred < 1):
            problem = f"preferred_batch_size must be None or a whole number of at least 1, got {described(preferred)}"
            raise ValueError(f"backend '{shown(backend.label)}': {problem}")
        with self.progress(description, len(pending)) as advance:
            while pending:
                size = preferred or self.batch_size
                batch, pending = pending[:size], pending[size:]
                computed = self._compute_with_back_off(backend, [requests[i] for i in batch], mode, description)
                fresh = {}
                for index, prediction in zip(batch, computed):
                    results[index] = replace(prediction, cache_key=keys[index])
                    if prediction.error is None and keys[index]:
                        fresh[keys[index]] = prediction.to_cache()
                if fresh and use_cache:
                    self.cache.put_many(fresh)
                advance(len(batch))
        return [result for result in results if result is not None]

    def _key(self, backend: Backend, mode: str, request: Request) -> str | None:
        """The request's cache key: by what its prompt was rendered from (`source`) where it has one, else
        by the prompt text."""
        if not backend.cacheable:
            return None
        prompt = {"source": request.source} if request.source is not None else {"prompt": request.prompt}
        if mode == "loglikelihood":
            spelling = {} if request.label_tokens == "either" else {"label_tokens": request.label_tokens}
            return cache_key(backend.fingerprint, mode, **prompt, labels=list(request.labels), **spelling)
        # These variants produce different text, so they get their own keys: a prompt that opens a think
        # block (its reply is split differently), and stop strings that apply only after the thinking.
        variant = {"thinking_opened": True} if opens_thinking(request.prompt) else {}
        if request.thinking and request.stop:
            variant["stop_after_thinking"] = True
        return cache_key(
            backend.fingerprint,
            mode,
            **prompt,
            max_new_tokens=request.max_new_tokens,
            stop=list(request.stop),
            **variant,
        )

    def _compute_with_back_off(
        self, backend: Backend, batch: list[Request], mode: str, description: str
    ) -> list[Prediction]:
        """The batch's predictions; on out-of-memory, its halves (recursively), down to single requests."""
        try:
            return self._compute(backend, batch, mode)
        except _out_of_memory() as exc:
            _release_memory()
            if len(batch) == 1:
                message = f"model '{backend.label}' ran out of memory on a single request: {exc}"
                return [Prediction(mode, "", None, "error", 0, error=message)]
            half = (len(batch) + 1) // 2
            self.batch_size = min(self.batch_size, half)
            self.back_offs.append(BackOff(description, len(batch), half, f"{type(exc).__name__}: {exc}"[:300]))
            first = self._compute_with_back_off(backend, batch[:half], mode, description)
            return first + self._compute_with_back_off(backend, batch[half:], mode, description)

    def _compute(self, backend: Backend, batch: list[Request], mode: str) -> list[Prediction]:
        try:
            if mode == "loglikelihood":
                return [_from_scores(scores) for scores in backend.score_choices(batch)]
            with phase("generate"):  # the timing table's generate phase: only the generation itself
                generations = zip(backend.generate(batch), batch, strict=True)
            return [self._bounded(_from_generation(g, r, backend), backend) for g, r in generations]
        except _out_of_memory():
            raise
        except Exception as exc:  # a crash in one batch becomes an error on its items; others go on
            message = (
                str(exc)
                if isinstance(exc, ModelError)
                else (f"model '{backend.label}' failed on this batch: {type(exc).__name__}: {exc}")
            )
            return [Prediction(mode, "", None, "error", 0, error=message) for _ in batch]

    def _size(self, prediction: Prediction) -> int:
        return len((prediction.text + (prediction.thinking or "")).encode("utf-8", errors="replace"))

    def _within_bound(self, prediction: Prediction | None) -> Prediction | None:
        """A cached prediction, or None (computed again) where it is over the size bound."""
        return prediction if prediction is None or self._size(prediction) <= self.max_output_bytes else None

    def _bounded(self, prediction: Prediction, backend: Backend) -> Prediction:
        """The prediction, or an error in its place where its text is over the size bound."""
        if prediction.error is not None or self._size(prediction) <= self.max_output_bytes:
            return prediction
        message = (
            f"model '{backend.label}' answered with {self._size(prediction)} bytes, over the bound of "
            f"{self.max_output_bytes} (--max-reply-bytes); the answer was not kept"
        )
        return Prediction("generate", "", None, "error", 0, error=message)


def _out_of_memory() -> tuple[type[BaseException], ...]:
    """torch's out-of-memory error, once torch is imported (a model that computes imports it)."""
    torch = sys.modules.get("torch")
    return (torch.OutOfMemoryError,) if torch is not None else ()


def _from_scores(scores: dict[str, float] | ModelError) -> Prediction:
    if isinstance(scores, ModelError):
        return Prediction("loglikelihood", "", None, "error", 0, error=str(scores))
    return Prediction("loglikelihood", "", scores, "stop", 0)


def _from_cache(entry: dict[str, Any], key: str, cache: PredictionCache) -> Prediction | None:
    """The cached prediction, or None (computed again, and counted) when the entry is malformed."""
    try:
        prediction = Prediction(**entry, cache_key=key, cached=True)
    except TypeError:
        prediction = None
    if prediction is None or not (
        prediction.mode in ("generate", "loglikelihood")
        and isinstance(prediction.text, str)
        and isinstance(prediction.finish_reason, str)
        and isinstance(prediction.new_tokens, int)
        and isinstance(prediction.choice_logprobs, dict | None)
        and all(isinstance(value, int | float) for value in (prediction.choice_logprobs or {}).values())
        and isinstance(prediction.thinking, str | None)
    ):
        cache.malformed += 1
        return None
    return prediction


def _release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _from_generation(generation: Generation, request: Request, backend: Backend) -> Prediction:
    """A generation with any <think> block split off the scored text; a prompt that opened the
    block makes the whole reply thinking until it closes (cached as split: the prompt is in the key)."""
    split = split_thinking(generation.text, opens_thinking(request.prompt))
    return Prediction(
        "generate",
        split.answer,
        None,
        generation.finish_reason,
        generation.new_tokens,
        thinking=split.thinking,
        thinking_unterminated=split.unterminated,
        thinking_tokens=backend.prompt_length(split.thinking) if split.thinking else 0,
        error=generation.error,
    )
