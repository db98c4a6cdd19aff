"""Thinking blocks: `<think>...</think>` is kept for the report but never scored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass(frozen=True)
class Split:
    answer: str  # the text to score
    thinking: str | None  # what the model thought, None when it did not
    unterminated: bool  # a <think> block never closed: the model ran out of tokens while thinking


def opens_thinking(prompt: str) -> bool:
    """Whether the rendered prompt ends inside an open think block (its last `<think>` comes after
    its last `</think>`), as newer Qwen3.x templates leave it when thinking is on; the reply then
    starts inside the block. A closed empty block (Qwen3 with thinking off) does not count."""
    return prompt.rfind(OPEN) > prompt.rfind(CLOSE)


def cut_at_stop(text: str, stops: Sequence[str], opened: bool = False) -> tuple[str, bool]:
    """`text` up to the first stop string of its answer, and whether one cut it. Stop strings inside a
    think block do not end the reply: they count only after the last `</think>`, and not at all while
    a block (opened by the prompt or by the reply) is still open."""
    start = _answer_start(text, opened)
    if start is None:
        return text, False
    cut = min((found for stop in stops if stop and (found := text.find(stop, start)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _answer_start(text: str, opened: bool) -> int | None:
    """Where the answer begins: after the last `</think>`, at 0 when no block was opened, None while
    one is still open."""
    close = text.rfind(CLOSE)
    if close >= 0:
        return None if text.find(OPEN, close) >= 0 else close + len(CLOSE)
    return None if opened or OPEN in text else 0


def split_thinking(text: str, opened: bool = False) -> Split:
    """Separate thinking from the answer. `opened`: the prompt opened the block (`opens_thinking`),
    so the reply is thinking until its first `</think>`, and a reply without one never answered.
    Without it a lone `</think>` still ends a block (a reply recorded from such a prompt); an
    unclosed `<think>` leaves no answer."""
    if opened and not text.lstrip().startswith(OPEN):
        text = OPEN + text
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
