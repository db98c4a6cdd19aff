"""One JSON request to an OpenAI-compatible server, bounded in time and size.

Each attempt has the whole `--request-timeout` (connecting, the headers and the full body); the reply is
read up to `--max-reply-bytes` and no further (gzip and deflate are decoded within that bound, too); 429,
5xx, connection errors and unreadable replies are retried as new attempts with exponential back-off (or
the server's Retry-After). Every text from the server passes through `redact` before it is quoted.
"""

from __future__ import annotations

import asyncio
import json
import math
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vnllmtest.backends.base import ModelError, ServerSettings
from vnllmtest.clipping import shown

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_WAIT = 30.0  # seconds: the longest pause between attempts, whatever Retry-After says
ACCEPTED_ENCODINGS = "gzip, deflate"  # what the client asks for; both are decoded within the size bound
EXCERPT = 200  # characters of a server's text quoted in a message


class Unreachable(ModelError):
    """The server could not be connected to, through every attempt."""


class Refused(ModelError):
    """The server answered the request with a 4xx status that another attempt would not change."""


class _Failed(Exception):
    """An attempt without a complete reply; `retry`: another attempt may get one."""

    def __init__(self, problem: str, *, retry: bool = True, unreachable: bool = False):
        super().__init__(problem)
        self.retry = retry
        self.unreachable = unreachable


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    settings: ServerSettings,
    redact: Callable[[str], str],
) -> dict[str, Any]:
    """The server's JSON object for this request; ModelError (naming `url`) once every attempt failed,
    at once for a refusal, a redirect or a reply over the size bound."""
    problem, wait, unreachable = "", None, False
    for attempt in range(settings.retries + 1):
        if attempt:
            await asyncio.sleep(wait if wait is not None else min(settings.backoff * 2 ** (attempt - 1), MAX_WAIT))
        try:
            status, headers, payload = await _attempt(client, method, url, body, settings)
        except _Failed as failure:
            text = _excerpt(str(failure), redact)
            if not failure.retry:
                raise ModelError(f"openai endpoint {url}: {text}") from None
            problem, wait, unreachable = text, None, failure.unreachable
            continue
        unreachable = False
        if status in RETRY_STATUSES:
            problem, wait = f"HTTP {status}: {_excerpt(payload, redact)}", retry_after(headers.get("retry-after"))
            continue
        if 300 <= status < 400:
            location = _excerpt(headers.get("location", "nowhere"), redact)
            raise ModelError(
                f"openai endpoint {url} redirected the request (HTTP {status} to {location}); redirects are not "
                "followed, so the API key never goes to another address: put the final URL in the model spec"
            )
        if status >= 400:
            error = Refused if status < 500 else ModelError
            raise error(f"openai endpoint {url} refused the request: HTTP {status}: {_excerpt(payload, redact)}")
        try:
            reply = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            problem, wait = f"the reply is not JSON ({type(exc).__name__}): {_excerpt(payload, redact)}", None
            continue
        if not isinstance(reply, dict):
            raise ModelError(f"openai endpoint {url}: the reply is a JSON {type(reply).__name__}, not an object")
        return reply
    error = Unreachable if unreachable else ModelError
    attempts = f"{settings.retries + 1} attempt" + ("s" if settings.retries else "")
    raise error(f"openai endpoint {url} failed after {attempts}; last error: {problem}")


def retry_after(value: str | None) -> float | None:
    """The pause a Retry-After header asks for (seconds or an HTTP date), at most MAX_WAIT; None where
    it says nothing usable (missing, negative, in the past, not a number or a date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return None
    return min(seconds, MAX_WAIT) if math.isfinite(seconds) and seconds >= 0 else None


async def _attempt(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None, settings: ServerSettings
) -> tuple[int, httpx.Headers, bytes]:
    try:
        async with asyncio.timeout(settings.timeout):
            async with client.stream(method, url, json=body) as response:
                payload = await _read_bounded(response, settings.max_reply_bytes)
                return response.status_code, response.headers, payload
    except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
        raise _Failed(
            f"no complete reply within {settings.timeout:g} s (--request-timeout bounds each attempt: "
            "connecting and the whole reply)"
        ) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _Failed(f"{type(exc).__name__}: {exc}", unreachable=True) from None
    except httpx.HTTPError as exc:
        raise _Failed(f"{type(exc).__name__}: {exc}") from None


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    """The decoded body, read only while it stays within `limit` bytes."""
    named = response.headers.get("content-encoding", "").strip()
    encoding = named.lower() or "identity"
    if encoding not in ("identity", "gzip", "deflate"):  # quoted as sent: the key in it is redacted as written
        raise _Failed(f"the reply came in content-encoding '{named}', which was not asked for", retry=False)
    decoder = None if encoding == "identity" else zlib.decompressobj(wbits=47)  # a gzip or zlib header
    parts: list[bytes] = []
    size = 0
    try:
        async for raw in response.aiter_raw():
            data = decoder.decompress(raw, limit - size + 1) if decoder else raw  # never more than fits, plus one
            size += len(data)
            if size > limit:
                raise _Failed(
                    f"the reply is over {limit} bytes, the bound set by --max-reply-bytes; reading stopped there "
                    "and nothing of it was kept",
                    retry=False,
                )
            parts.append(data)
    except zlib.error as exc:
        raise _Failed(f"the {encoding} reply could not be decoded: {exc}", retry=False) from None
    if decoder is not None and not decoder.eof:
        raise _Failed(f"the {encoding} reply ended before its compressed stream did")
    return b"".join(parts)


def _excerpt(text: str | bytes, redact: Callable[[str], str]) -> str:
    """A server's text on one line, at most about EXCERPT characters: secrets redacted before it is cut
    (a cut could split a secret and leave part of it unrecognised)."""
    return shown(redact(text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text), EXCERPT)
