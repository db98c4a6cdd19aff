"""Secrets out of text that came from elsewhere: the API key is replaced before the text enters a message,
a record or a report, and in texts that are not a model's answer (error bodies, headers) so is anything
that looks like a bearer token or an OpenAI-style key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MARK = "[redacted]"
# `Authorization: Bearer …`/`Basic …` values and `sk-…` keys, whoever's they are. A credential has a digit or
# one of _+/= among its characters, so that prose ("basic knowledge.", "basic well-known facts") stays as it is.
_CREDENTIAL = r"(?=[A-Za-z.~\-]*[0-9_+/=])[A-Za-z0-9._~+/=\-]{8,}"
_TOKENS = re.compile(rf"(?i)\b(bearer|basic)(\s+){_CREDENTIAL}|\bsk-[A-Za-z0-9_\-]{{8,}}")


def _replace_token(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{MARK}" if match.group(1) else MARK


class Redactor:
    """Replaces each secret (as written, JSON-escaped or URL-quoted) with MARK, and with `tokens` any
    token-like text too.

    Model answers get `tokens=False`: "Basic 2024-2025 syllabus" or "sk-learn_pipeline1" is an answer to
    score as any other backend would, not a credential. Secrets shorter than `min_length` are left alone:
    placeholders such as `EMPTY` are no secret, and replacing a short word everywhere would change answers."""

    def __init__(self, secrets: Iterable[str], min_length: int = 1, tokens: bool = True):
        forms = set()
        for secret in secrets:
            if len(secret) >= min_length:
                forms |= {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
        self._secrets = sorted(forms, key=len, reverse=True)
        self._tokens = tokens

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MARK)
        return _TOKENS.sub(_replace_token, text) if self._tokens else text

    def within(self, value: Any) -> Any:
        """A parsed JSON value with every text in it (object keys too) redacted, changed in place: done once
        as a reply arrives, so that no later cut of a long value can split a secret out of view."""
        root = [value]
        pending: list[list | dict] = [root]
        while pending:  # not recursive: a reply nests as deeply as the JSON parser allows
            node = pending.pop()
            for key, item in list(node.items() if isinstance(node, dict) else enumerate(node)):
                if isinstance(item, str):
                    node[key] = self(item)
                elif isinstance(item, dict | list):
                    pending.append(item)
                if isinstance(key, str) and (clean := self(key)) != key:
                    node[clean] = node.pop(key)
        return root[0]
