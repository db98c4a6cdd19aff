"""OpenAI-compatible servers (vLLM, TGI, llama.cpp, Ollama): chat or completion endpoints, `--concurrency`
requests in flight, each one bounded in time and size and retried on its own (server_http), and option
scoring from next-token logprobs. Each request succeeds or fails by itself: a failure is that item's error.

The API key comes only from an environment variable; it is sent in the Authorization header and never
written anywhere else: every reply has the key (as written, JSON-escaped or URL-quoted) redacted from each
of its texts as it arrives, and texts quoted in messages (error bodies, headers, a malformed reply's values)
have anything like a bearer token or an `sk-` key redacted as well. Answers keep all other text, so they
score as they would through any other backend.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

import vnllmtest.backends.openai_reply as shape
from vnllmtest.backends.base import ROUNDS_PER_BATCH, Backend, Generation, ModelError, Request, ServerSettings
from vnllmtest.backends.registry import ModelSpec
from vnllmtest.backends.server_http import ACCEPTED_ENCODINGS, Refused, Unreachable, request_json
from vnllmtest.messages import Message, plain_prompt
from vnllmtest.redaction import Redactor
from vnllmtest.thinking import cut_at_stop, opens_thinking

__all__ = ["OpenAIBackend", "ServerSettings"]

TOP_LOGPROBS = 20  # the most vLLM and llama.cpp return per position by default
REPLY_SECRET_MIN = 8  # a key shorter than this is a placeholder (EMPTY, test): not searched for in model replies

T = TypeVar("T")
Work = Callable[[httpx.AsyncClient, Request], Awaitable[T]]


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API."""

    def __init__(self, spec: ModelSpec, settings: ServerSettings):
        self.label = spec.label
        self.url = spec.target
        self.settings = settings
        self.endpoint = spec.endpoint
        self.plain_prompts = spec.endpoint == "completions"
        self.served_name = spec.served_name
        self.fingerprint = f"openai:{self.url}|model={self.served_name or '(first listed)'}|endpoint={spec.endpoint}"
        self.device_name = f"server {self.url}"
        self.preferred_batch_size = ROUNDS_PER_BATCH * settings.concurrency
        self.where = f"{self.url}/chat/completions" if spec.endpoint == "chat" else f"{self.url}/completions"
        key = os.environ.get(settings.api_key_env) or ""
        self._headers = {"Accept-Encoding": ACCEPTED_ENCODINGS, **({"Authorization": f"Bearer {key}"} if key else {})}
        self._redact = Redactor([key])  # server texts quoted in messages
        self._redact_reply = Redactor([key], min_length=REPLY_SECRET_MIN, tokens=False)  # replies: the key only
        self._logprobs: bool | None = None
        self._down: str | None = None  # set once the server stayed unreachable through every retry

    # --- prompts -------------------------------------------------------------------------------
    def format_prompt(self, messages: Sequence[Message], thinking: bool = False) -> str:
        """Completions get plain text; chat gets the messages (as JSON, the exact request content)."""
        if self.endpoint == "completions":
            return plain_prompt(messages)
        return json.dumps({"messages": list(messages), "thinking": thinking}, ensure_ascii=False)

    def batch_order(self, prompt: str) -> str:
        """Servers batch for themselves; prompts that begin alike go one after another instead, so
        that the server's prefix cache (llama.cpp, vLLM) reuses their common start."""
        return prompt

    # --- capabilities --------------------------------------------------------------------------
    @property
    def supports_loglikelihood(self) -> bool:
        """Whether the server returns next-token logprobs (vLLM and llama.cpp do; Ollama does not), asked
        once and remembered. A probe that fails otherwise (5xx, timeout, no server) says nothing and is
        asked again next time: the scoring requests run meanwhile, and each failure is its item's error."""
        if self._logprobs is None:
            probe = Request("probe", "probe", self.format_prompt([{"role": "user", "content": "A"}]), ("A",), 1)
            [answer] = self._run(self._probe, [probe])
            if isinstance(answer, ModelError):
                return True
            self._logprobs = answer
        return self._logprobs

    # --- requests ------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        answers = self._run(self._generate_one, requests)
        return [a if isinstance(a, Generation) else Generation("", "error", 0, error=str(a)) for a in answers]

    def score_choices(self, requests: Sequence[Request]) -> list[dict[str, float] | ModelError]:
        return self._run(self._score_one, requests)

    def _run(self, work: Work[T], requests: Sequence[Request]) -> list[T | ModelError]:
        return _run_coroutine(self._all(work, requests))

    async def _all(self, work: Work[T], requests: Sequence[Request]) -> list[T | ModelError]:
        """Every request's answer, or its ModelError, with at most --concurrency in flight."""
        limits = httpx.Limits(max_connections=self.settings.concurrency)
        async with httpx.AsyncClient(headers=self._headers, timeout=self.settings.timeout, limits=limits) as client:
            try:
                await self._resolve_served_name(client)
            except ModelError as exc:
                return [exc] * len(requests)
            gate = asyncio.Semaphore(self.settings.concurrency)

            async def one(request: Request) -> T | ModelError:
                async with gate:
                    try:
                        return await work(client, request)
                    except ModelError as exc:
                        return exc
                    except shape.MalformedReply as exc:
                        return ModelError(f"openai endpoint {self.where}: malformed reply: {self._redact(str(exc))}")

            return list(await asyncio.gather(*(one(request) for request in requests)))

    async def _probe(self, client: httpx.AsyncClient, request: Request) -> bool:
        """Whether a reply carries logprobs. A server that refuses them (HTTP 400/422, as some do) has none,
        where it answers the same request without them; one that refuses both (a wrong key, an unknown
        model) raises that refusal: the answer is still unknown."""
        try:
            reply = await self._post(client, self._body(request, 1, logprobs=True))
        except Refused:
            shape.first_choice(await self._post(client, self._body(request, 1)))
            return False
        return bool(shape.first_choice(reply).get("logprobs"))

    async def _generate_one(self, client: httpx.AsyncClient, request: Request) -> Generation:
        reply = await self._post(client, self._body(request, request.max_new_tokens))
        choice = shape.first_choice(reply)
        finish = shape.finish_reason(choice)
        if self.endpoint == "chat":
            content, reasoning = shape.chat_text(choice)
            text, _ = cut_at_stop(content, request.stop)
            if reasoning:  # a reply cut while the server's reasoning was still open leaves the block open
                still_thinking = finish == "length" and not text
                text = f"<think>{reasoning}" if still_thinking else f"<think>{reasoning}</think>{text}"
        else:
            text, _ = cut_at_stop(shape.completion_text(choice), request.stop, opens_thinking(request.prompt))
        return Generation(text, finish, shape.completion_tokens(reply))

    async def _score_one(self, client: httpx.AsyncClient, request: Request) -> dict[str, float]:
        """Log-probability of each option label as the next token, from the server's top logprobs
        (labels outside the top TOP_LOGPROBS get -inf)."""
        reply = await self._post(client, self._body(request, 1, logprobs=True))
        top = shape.top_logprobs(shape.first_choice(reply))
        scores = {}
        for label in request.labels:
            spellings = request.label_spellings(label)
            scores[label] = _log_sum([value for token, value in top.items() if token in spellings])
        return scores

    def _body(self, request: Request, max_tokens: int, *, logprobs: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0, "seed": 0, "model": self.served_name}
        if request.stop and not request.thinking:  # a server would stop inside the thinking: cut here instead
            body["stop"] = list(request.stop)
        if self.endpoint == "chat":
            content = json.loads(request.prompt)
            body["messages"] = content["messages"]
            body["chat_template_kwargs"] = {"enable_thinking": content["thinking"]}
            if logprobs:
                body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            return body
        body["prompt"] = request.prompt
        if logprobs:
            body["logprobs"] = TOP_LOGPROBS
        return body

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
        if self._down:
            raise ModelError(self._down)
        try:
            return await self._request(client, "POST", self.where, body)
        except Unreachable as exc:
            self._down = str(exc)  # the server is gone: fail the remaining requests at once
            raise

    async def _request(
        self, client: httpx.AsyncClient, method: str, where: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The server's reply, the key redacted from each of its texts before anything reads them."""
        return self._redact_reply.within(
            await request_json(client, method, where, body, self.settings, self._redact)
        )

    async def _resolve_served_name(self, client: httpx.AsyncClient) -> None:
        """Without +model=NAME, the first model the server lists."""
        if self.served_name is not None:
            return
        where = f"{self.url}/models"
        try:
            self.served_name = shape.listed_model(await self._request(client, "GET", where, None))
        except shape.MalformedReply as exc:
            problem = f"listed no usable model ({self._redact(str(exc))}); name it with +model=NAME"
            raise ModelError(f"openai endpoint {where} {problem}") from None
        except ModelError as exc:
            raise ModelError(f"{exc}; name the model with +model=NAME") from None


def _log_sum(values: list[float]) -> float:
    """log(sum(exp(v))), exact for very negative values; -inf for none."""
    top = max(values, default=float("-inf"))
    if top == float("-inf"):
        return top
    return top + math.log(sum(math.exp(value - top) for value in values))


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from code that already runs an event loop (a notebook): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
