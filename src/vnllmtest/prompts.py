"""Prompt rendering: sandboxed Jinja2 templates over item fields, few-shot turns, chat messages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from vnllmtest.loaders.base import Item
    from vnllmtest.suite import PromptSpec

Message = dict[str, str]

_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, autoescape=False
)


class PromptError(Exception):
    """A template that cannot be rendered for one item (e.g. it names a field the record lacks)."""


@lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """A sandboxed template (suites cannot run code); raises jinja2.TemplateSyntaxError."""
    return _ENVIRONMENT.from_string(source)


def unknown_fields(spec: PromptSpec, items: Sequence[Item], constants: Mapping[str, Any]) -> list[str]:
    """Variables the system and user templates use that no item has as a field (nor the suite as a
    constant, nor Jinja as a global): such a template cannot render for any record."""
    used: set[str] = set()
    for source in (spec.system, spec.template):
        if source:
            used |= meta.find_undeclared_variables(_ENVIRONMENT.parse(source))
    known = set(constants) | set(_ENVIRONMENT.globals)
    for item in items:
        known |= set(item.fields)
    return sorted(used - known)


def render(source: str, fields: Mapping[str, Any]) -> str:
    try:
        return compile_template(source).render(**fields).strip()
    except UndefinedError as exc:
        raise PromptError(f"prompt template: {exc.message}; the record has fields {sorted(fields)}") from None
    except TemplateError as exc:
        raise PromptError(f"prompt template: {exc}") from None


class PromptBuilder:
    """Turns items into chat messages: optional system turn, few-shot turns, then the question.
    `constants` are suite-level template variables (e.g. `abstention`), shadowed by record fields."""

    def __init__(self, spec: PromptSpec, pool: Sequence[Item], constants: Mapping[str, Any] | None = None):
        self._spec = spec
        self._constants = dict(constants or {})
        self._shots = self._choose_shots(pool)

    def _choose_shots(self, pool: Sequence[Item]) -> list[Item]:
        fewshot = self._spec.fewshot
        if fewshot is None or fewshot.k == 0:
            return []
        ranked = sorted(pool, key=lambda item: hashlib.sha256(f"{fewshot.seed}\x00{item.id}".encode()).digest())
        return ranked[: fewshot.k + 1]  # one spare, used when an item is its own shot

    def messages(self, item: Item, fields: Mapping[str, Any] | None = None) -> list[Message]:
        """The turns for `item`, rendered from `fields` when given (e.g. shortened by a budget)."""
        spec = self._spec
        own = {**self._constants, **(item.fields if fields is None else fields)}
        messages: list[Message] = []
        if spec.system:
            messages.append({"role": "system", "content": render(spec.system, own)})
        if spec.fewshot is not None and spec.fewshot.k:
            for shot in [s for s in self._shots if s.id != item.id][: spec.fewshot.k]:
                messages.append({"role": "user", "content": render(spec.template, {**self._constants, **shot.fields})})
                messages.append({"role": "assistant", "content": render(spec.fewshot.target, _shot_fields(shot))})
        messages.append({"role": "user", "content": render(spec.template, own)})
        return messages


def _shot_fields(shot: Item) -> dict[str, Any]:
    """Fields of a few-shot example, plus its gold `answer` for the target template."""
    return {**shot.fields, "answer": shot.references[0] if shot.references else "", "references": shot.references}


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
