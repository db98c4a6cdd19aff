"""The interface every model backend implements, the request/response records they exchange, and the
settings local models and servers run with."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from vnllmtest import timing
from vnllmtest.clipping import described
from vnllmtest.messages import Message, plain_prompt

# The largest reply kept from any model (bytes; --max-reply-bytes): several times what 32,768 tokens of
# JSON-escaped Vietnamese take, so only a broken or hostile model reaches it.
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
QUANT_CHOICES = ("auto", "4bit", "8bit", "none")  # HFSettings.quant
ROUNDS_PER_BATCH = 4  # a server batch holds this many rounds of --concurrency requests (each batch is cached)


@dataclass(frozen=True)
class LoadEvent:
    """One load of model weights in this process: the evidence that each model loads once per run."""

    label: str
    fingerprint: str
    pid: int
    seconds: float


LOAD_LOG: list[LoadEvent] = []


def record_load(backend: Backend, seconds: float) -> None:
    LOAD_LOG.append(LoadEvent(backend.label, backend.fingerprint, os.getpid(), seconds))
    timing.counted("load", seconds)


class ModelError(Exception):
    """A model that cannot be loaded or that failed while answering; the message names the model."""


@dataclass(frozen=True)
class HFSettings:
    """How local transformers models run: device, weights dtype and quantisation ("auto" picks from
    the device), memory caps per device, and whether model code from the hub may run."""

    device: str = "auto"
    dtype: str = "auto"
    quant: str = "auto"  # auto | 4bit | 8bit | none
    max_memory: str | None = None  # e.g. "0=14GiB,cpu=30GiB"
    trust_remote_code: bool = False


@dataclass(frozen=True)
class ServerSettings:
    """How to talk to servers: where the API key is, how many requests at once, timeouts, retries and
    the largest reply read."""

    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout: float = 120.0  # seconds per attempt, connecting and the whole reply
    retries: int = 4  # attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubles each time, at most MAX_WAIT
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES

    def __post_init__(self) -> None:
        """Settings that cannot work (no request ever in flight, no time for a reply) are refused here, for
        callers of the Runner and the backends as much as for the command line."""
        if not isinstance(self.api_key_env, str):
            _refuse("api_key_env", "the name of an environment variable", self.api_key_env)
        for name, least in (("concurrency", 1), ("retries", 0), ("max_reply_bytes", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                _refuse(name, f"a whole number of at least {least}", value)
        for name, least in (("timeout", "above 0"), ("backoff", "at least 0")):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= 1e300
            if not number or value < 0 or (value == 0 and name == "timeout"):
                _refuse(name, f"a finite number of seconds {least}", value)


def _refuse(field: str, expected: str, value: object) -> NoReturn:
    raise ValueError(f"ServerSettings.{field} must be {expected}, got {described(value)}")


@dataclass(frozen=True)
class Request:
    """One item to answer: the rendered prompt plus what the suite asks of the answer."""

    suite: str
    item_id: str
    prompt: str
    labels: tuple[str, ...] = ()
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    label_tokens: str = "either"  # scoring.label_tokens: "either", "spaced" or "bare"
    thinking: bool = False  # the model may think first: stop strings then end the answer, never the thinking
    source: str | None = None  # a digest of what the prompt was rendered from; keys the cache in its place

    def label_spellings(self, label: str) -> tuple[str, ...]:
        """The texts whose first token stands for this option label in log-likelihood scoring."""
        return {"either": (label, f" {label}"), "spaced": (f" {label}",), "bare": (label,)}[self.label_tokens]


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "stop" (end of sequence or stop string), "length" (max_new_tokens) or "error"
    new_tokens: int
    error: str | None = None  # why this one item has no answer; the other items still count


class Backend(ABC):
    """A loaded model. `label` names it in test ids and reports; `fingerprint` keys the cache."""

    label: str
    fingerprint: str
    device_name: str = "none"  # where the model computes, for the run manifest
    supports_loglikelihood: bool = False
    cacheable: bool = True
    plain_prompts: bool = False  # prompts are text the model continues (no chat template): answers can be primed
    preferred_batch_size: int | None = None  # requests per call where the backend paces them itself (servers)
    # What turns chat messages into the prompt and counts its tokens (a digest of the tokenizer files and chat
    # template), for backends whose rendering is costly: their prompts are cached under it (vnllmtest.rendering).
    # None: every prompt is rendered, and the cache is keyed by the prompt text.
    prompt_identity: str | None = None

    def format_prompt(self, messages: Sequence[Message], thinking: bool = False) -> str:
        """The exact text the model sees for these chat messages (thinking on or off, where the
        model's template has the switch)."""
        return plain_prompt(messages)

    def prompt_length(self, prompt: str) -> int:
        """Length of a text in the model's tokens (characters where the backend has no tokenizer)."""
        return len(prompt)

    def batch_order(self, prompt: str) -> int | str:
        """Sort key of a pending request: longest first, so that each batch carries little padding."""
        return -self.prompt_length(prompt)

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """Greedy answers for one batch, in request order; an item without an answer carries its error."""

    def score_choices(self, requests: Sequence[Request]) -> list[dict[str, float] | ModelError]:
        """Log-probability of each option label as the next token, for one batch, in request order; an
        item that could not be scored gets its ModelError in its place (the others still count)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score log-likelihoods")

    def close(self) -> None:
        """Release the model's memory."""
