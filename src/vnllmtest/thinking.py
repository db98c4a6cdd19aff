"""Thinking blocks: `<think>...</think>` is kept for the report but never scored."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass(frozen=True)
class Split:
    answer: str  # the text to score
    thinking: str | None  # what the model thought, None when it did not
    unterminated: bool  # a <think> block never closed: the model ran out of tokens while thinking


def split_thinking(text: str) -> Split:
    """Separate thinking from the answer. Some templates open the block in the prompt, so a lone
    `</think>` also ends one; an unclosed `<think>` leaves no answer."""
    thoughts = [match.strip() for match in _BLOCK.findall(text)]
    rest = _BLOCK.sub("", text)
    if CLOSE in rest:  # the opening tag was part of the prompt
        before, _, rest = rest.partition(CLOSE)
        thoughts.insert(0, before.strip())
    if OPEN in rest:
        before, _, after = rest.partition(OPEN)
        thoughts.append(after.strip())
        return Split(before.strip(), "\n\n".join(thoughts), True)
    return Split(rest.strip() if thoughts else rest, "\n\n".join(thoughts) if thoughts else None, False)
