"""Long texts cut for display (terminal, report.html): the start and the end stay, the cut is named."""

from __future__ import annotations


def clip(text: str, limit: int, whole: str = "items.jsonl") -> str:
    """`text` if it has at most `limit` characters, else its first and last `limit // 2` characters
    around a line saying how many were left out and where the whole text is."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters not shown; {whole} has the whole text ...]\n{text[-half:]}"
