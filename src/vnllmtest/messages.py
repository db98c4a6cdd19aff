"""Chat messages, the form every prompt takes before a model's template turns it into text, and the
plain-text form for models without a chat template."""

from __future__ import annotations

from collections.abc import Sequence

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": text}


def plain_prompt(messages: Sequence[Message]) -> str:
    """A completion-style prompt for models without a chat template: turns joined by blank lines,
    each assistant turn following its user turn on the same line."""
    blocks: list[str] = []
    for message in messages:
        if message["role"] == "assistant" and blocks:
            blocks[-1] = f"{blocks[-1]} {message['content']}"
        else:
            blocks.append(message["content"])
    return "\n\n".join(blocks)
