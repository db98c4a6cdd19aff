"""Secrets out of text that came from elsewhere: the API key, and anything that looks like a bearer
token or an OpenAI-style key, are replaced before the text enters a message, a record or a report."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote

MARK = "[redacted]"
# `Authorization: Bearer …`/`Basic …` values and `sk-…` keys, whoever's they are. A credential has a digit or
# one of _+/= among its characters, so that prose ("basic knowledge.", "basic well-known facts") stays as it is.
_CREDENTIAL = r"(?=[A-Za-z.~\-]*[0-9_+/=])[A-Za-z0-9._~+/=\-]{8,}"
_TOKENS = re.compile(rf"(?i)\b(bearer|basic)(\s+){_CREDENTIAL}|\bsk-[A-Za-z0-9_\-]{{8,}}")


def _replace_token(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{MARK}" if match.group(1) else MARK


class Redactor:
    """Replaces each secret (as written, JSON-escaped or URL-quoted) and token-like text with MARK.

    Secrets shorter than `min_length` are left alone: placeholders such as `EMPTY` are no secret, and
    replacing a short word everywhere would change the model's answers."""

    def __init__(self, secrets: Iterable[str], min_length: int = 1):
        forms = set()
        for secret in secrets:
            if len(secret) >= min_length:
                forms |= {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
        self._secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MARK)
        return _TOKENS.sub(_replace_token, text)
