"""OpenAI-compatible servers (vLLM, TGI, llama.cpp, Ollama): chat or completion endpoints, concurrent
requests, timeouts, retries with exponential back-off, and option scoring from next-token logprobs.

The API key comes only from an environment variable; it is sent in the Authorization header and
never written anywhere else.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from vnllmtest.backends.base import Backend, Generation, ModelError, Request
from vnllmtest.backends.registry import ModelSpec
from vnllmtest.prompts import Message, plain_prompt
from vnllmtest.thinking import cut_at_stop, opens_thinking

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20  # the most vLLM and llama.cpp return per position by default


@dataclass(frozen=True)
class ServerSettings:
    """How to talk to servers: where the API key is, how many requests at once, timeouts, retries."""

    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 4  # attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubles each time, at most 30


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
        self._client = httpx.Client(timeout=settings.timeout, headers=self._headers())
        self._logprobs: bool | None = None
        self._down: str | None = None  # set once the server stayed unreachable through every retry
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.settings.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

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
        """Whether the server returns next-token logprobs (vLLM and llama.cpp do; Ollama does not)."""
        if self._logprobs is None:
            probe = Request("probe", "probe", self.format_prompt([{"role": "user", "content": "A"}]), ("A",), 1)
            try:
                reply = self._post(self._body(probe, 1, logprobs=True))
                self._logprobs = bool(reply["choices"][0].get("logprobs"))
            except ModelError:
                self._logprobs = False
        return self._logprobs

    # --- requests ------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return self._concurrently(self._generate_one, requests)

    def score_choices(self, requests: Sequence[Request]) -> list[dict[str, float]]:
        return self._concurrently(self._score_one, requests)

    def _concurrently(self, work, requests: Sequence[Request]) -> list:
        with ThreadPoolExecutor(max_workers=max(1, min(self.settings.concurrency, len(requests)))) as pool:
            return list(pool.map(work, requests))

    def _generate_one(self, request: Request) -> Generation:
        reply = self._post(self._body(request, request.max_new_tokens))
        choice = reply["choices"][0]
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        if self.endpoint == "chat":
            message = choice.get("message") or {}
            text, _ = cut_at_stop(message.get("content") or "", request.stop)
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:  # a reply cut while the server's reasoning was still open leaves the block open
                still_thinking = finish == "length" and not text
                text = f"<think>{reasoning}" if still_thinking else f"<think>{reasoning}</think>{text}"
        else:
            text, _ = cut_at_stop(choice.get("text") or "", request.stop, opens_thinking(request.prompt))
        tokens = (reply.get("usage") or {}).get("completion_tokens", 0)
        return Generation(text, finish, tokens)

    def _score_one(self, request: Request) -> dict[str, float]:
        """Log-probability of each option label as the next token, from the server's top logprobs
        (labels outside the top TOP_LOGPROBS get -inf)."""
        top = self._top_logprobs(self._post(self._body(request, 1, logprobs=True)))
        scores = {}
        for label in request.labels:
            spellings = request.label_spellings(label)
            found = [value for token, value in top.items() if token in spellings]
            scores[label] = math.log(sum(math.exp(v) for v in found)) if found else float("-inf")
        return scores

    def _body(self, request: Request, max_tokens: int, *, logprobs: bool = False) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0, "seed": 0}
        if self.served_name:
            body["model"] = self.served_name
        if request.stop and not request.thinking:  # a server would stop inside the thinking: cut here instead
            body["stop"] = list(request.stop)
        if self.endpoint == "chat":
            content = json.loads(request.prompt)
            body["messages"] = content["messages"]
            body["chat_template_kwargs"] = {"enable_thinking": content["thinking"]}
            if logprobs:
                body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            return "/chat/completions", body
        body["prompt"] = request.prompt
        if logprobs:
            body["logprobs"] = TOP_LOGPROBS
        return "/completions", body

    def _top_logprobs(self, reply: dict[str, Any]) -> dict[str, float]:
        """The first generated position's top tokens and their logprobs, in either API shape."""
        logprobs = reply["choices"][0].get("logprobs") or {}
        if isinstance(logprobs.get("content"), list) and logprobs["content"]:  # chat shape
            return {entry["token"]: entry["logprob"] for entry in logprobs["content"][0].get("top_logprobs", [])}
        top = logprobs.get("top_logprobs")  # completions shape
        return dict(top[0]) if isinstance(top, list) and top else {}

    def _post(self, request: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        """POST with retries on 429/5xx/connection errors and exponential back-off (or Retry-After)."""
        if self._down:
            raise ModelError(self._down)
        path, body = request
        if "model" not in body and self.served_name is None:
            body["model"] = self._first_listed_model()
        where = f"{self.url}{path}"
        problem, wait = "", 0.0
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(wait or min(self.settings.backoff * 2 ** (attempt - 1), 30.0))
            try:
                response = self._client.post(where, json=body)
            except httpx.HTTPError as exc:
                problem, wait = f"{type(exc).__name__}: {exc}", 0.0
                continue
            if response.status_code in RETRY_STATUSES:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                retry_after = response.headers.get("retry-after", "")
                wait = min(float(retry_after), 30.0) if retry_after.isdigit() else 0.0
                continue
            if response.status_code >= 400:
                raise ModelError(
                    f"openai endpoint {where} refused the request: HTTP {response.status_code}: {response.text[:300]}"
                )
            try:
                return response.json()
            except ValueError:
                problem, wait = f"invalid JSON in the reply: {response.text[:200]}", 0.0
        message = f"openai endpoint {where} failed after {self.settings.retries + 1} attempts; last error: {problem}"
        if problem.startswith(("ConnectError", "ConnectTimeout", "RemoteProtocolError", "ReadError")):
            with self._lock:
                self._down = message  # the server is gone: fail the remaining requests at once
        raise ModelError(message)

    def _first_listed_model(self) -> str:
        if self.served_name is None:
            try:
                listed = self._client.get(f"{self.url}/models").json()["data"]
                self.served_name = listed[0]["id"]
            except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
                raise ModelError(
                    f"openai endpoint {self.url}/models did not list a model ({type(exc).__name__}: {exc}); "
                    "name it with +model=NAME"
                ) from None
        return self.served_name

    def close(self) -> None:
        self._client.close()

