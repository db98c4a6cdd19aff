"""Reading an OpenAI-compatible reply: every field the backend uses is checked, and a reply of another
shape is a MalformedReply naming the field and what it held, never a default value."""

from __future__ import annotations

import math
from typing import Any

from vnllmtest.clipping import described

MISSING = object()
MAX_MODEL_NAME = 256  # characters of a model name listed by /models (it goes into fingerprints and reports)


class MalformedReply(ValueError):
    """A reply whose shape is not the API's; the message names the field."""


def _bad(field: str, value: Any, expected: str) -> MalformedReply:
    shown = "missing" if value is MISSING else f"{described(value)} ({type(value).__name__})"
    return MalformedReply(f"{field} is {shown}, expected {expected}")


def first_choice(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("error") is not None:
        raise MalformedReply(f"the server sent an error object with a success status: {described(reply['error'])}")
    choices = reply.get("choices", MISSING)
    if not isinstance(choices, list) or not choices:
        raise _bad("choices", choices, "a non-empty list")
    if not isinstance(choices[0], dict):
        raise _bad("choices[0]", choices[0], "an object")
    return choices[0]


def finish_reason(choice: dict[str, Any]) -> str:
    """"length" where the token budget cut the reply, else "stop"."""
    reason = choice.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        raise _bad("choices[0].finish_reason", reason, "text or null")
    return "length" if reason == "length" else "stop"


def chat_text(choice: dict[str, Any]) -> tuple[str, str | None]:
    """The message's content ("" for null: a reply cut while reasoning has none) and its reasoning."""
    message = choice.get("message", MISSING)
    if not isinstance(message, dict):
        raise _bad("choices[0].message", message, "an object")
    texts = {}
    for name in ("content", "reasoning_content", "reasoning"):
        value = message.get(name)
        if value is not None and not isinstance(value, str):
            raise _bad(f"choices[0].message.{name}", value, "text or null")
        texts[name] = value
    return texts["content"] or "", texts["reasoning_content"] or texts["reasoning"] or None


def completion_text(choice: dict[str, Any]) -> str:
    text = choice.get("text", MISSING)
    if not isinstance(text, str):
        raise _bad("choices[0].text", text, "text")
    return text


def completion_tokens(reply: dict[str, Any]) -> int:
    """The server's count of generated tokens; 0 where it gives no usage (the count is only shown)."""
    usage = reply.get("usage")
    if usage is None:
        return 0
    if not isinstance(usage, dict):
        raise _bad("usage", usage, "an object")
    tokens = usage.get("completion_tokens", 0)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise _bad("usage.completion_tokens", tokens, "a count of tokens")
    return tokens


def top_logprobs(choice: dict[str, Any]) -> dict[str, float]:
    """The first generated position's top tokens and their log-probabilities, in either API shape;
    empty where the server sent none."""
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return {}
    if not isinstance(logprobs, dict):
        raise _bad("choices[0].logprobs", logprobs, "an object")
    if logprobs.get("content") is not None:  # chat: content[0].top_logprobs = [{token, logprob}, ...]
        where = "choices[0].logprobs.content"
        positions = _list(logprobs["content"], where)
        if not positions:
            return {}
        if not isinstance(positions[0], dict):
            raise _bad(f"{where}[0]", positions[0], "an object")
        entries = _list(positions[0].get("top_logprobs", []), f"{where}[0].top_logprobs")
        pairs = []
        for index, entry in enumerate(entries):
            field = f"{where}[0].top_logprobs[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                raise _bad(field, entry, "an object with a text 'token'")
            pairs.append((entry["token"], entry.get("logprob", MISSING), f"{field}.logprob"))
    else:  # completions: top_logprobs = [{token: logprob, ...}, ...]
        positions = _list(logprobs.get("top_logprobs", []), "choices[0].logprobs.top_logprobs")
        if not positions:
            return {}
        if not isinstance(positions[0], dict):
            raise _bad("choices[0].logprobs.top_logprobs[0]", positions[0], "an object of token: log-probability")
        pairs = [(t, v, f"choices[0].logprobs.top_logprobs[0][{described(t, 60)}]") for t, v in positions[0].items()]
    return {token: _logprob(value, field) for token, value, field in pairs}


def listed_model(reply: dict[str, Any]) -> str:
    """The first model a /models listing names."""
    data = reply.get("data", MISSING)
    if not isinstance(data, list) or not data:
        raise _bad("data", data, "a non-empty list of models")
    name = data[0].get("id", MISSING) if isinstance(data[0], dict) else MISSING
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_MODEL_NAME:
        raise _bad("data[0].id", name, f"a model name of at most {MAX_MODEL_NAME} characters")
    return name


def _list(value: Any, field: str) -> list:
    if not isinstance(value, list):
        raise _bad(field, value, "a list")
    return value


def _logprob(value: Any, field: str) -> float:
    """A log-probability: a number at most 0 (a rounding error above it is allowed), or -inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-3:
        raise _bad(field, value, "a log-probability (a number at most 0)")
    return min(float(value), 0.0)
