"""Texts and values cut to a size fit for a message or a page, the cut always named.

`shown` and `described` put untrusted text and values into one-line error messages; `clip` shortens
long texts (prompts, outputs) for the terminal and report.html, keeping both ends.
"""

from __future__ import annotations

import reprlib
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 120
_REPR.maxlevel = 3


def shown(value: object, limit: int = 200) -> str:
    """`value` as text on one line, at most about `limit` characters: the middle is cut out and counted."""
    text = " ".join(str(value).splitlines())
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}[... {len(text) - 2 * half} characters ...]{text[-half:]}"


def described(value: Any, limit: int = 200) -> str:
    """A bounded repr of a value from a file (a suite, a record, a server reply), however large it is."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a {value.bit_length():,}-bit number"
    text = shown(_REPR.repr(value), limit)
    if isinstance(value, str | bytes) and len(value) > _REPR.maxstring:
        text += f" ({len(value):,} characters in all)"
    elif isinstance(value, list | tuple | dict) and len(value) > _REPR.maxlist:
        text += f" ({len(value):,} items in all)"
    return text


def clip(text: str, limit: int, whole: str = "items.jsonl") -> str:
    """`text` if it has at most `limit` characters, else its first and last `limit // 2` characters
    around a line saying how many were left out and where the whole text is."""
    if len(text) <= limit:
        return text
    half = limit // 2
    note = f"[... {len(text) - 2 * half} characters not shown; {whole} has the whole text ...]"
    return f"{text[:half]}\n{note}\n{text[-half:]}"
