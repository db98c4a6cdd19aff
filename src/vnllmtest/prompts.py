"""Prompt rendering: sandboxed, resource-bounded Jinja2 templates over item fields, few-shot turns, chat messages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, meta

from vnllmtest.quota import LimitExceeded, Quota
from vnllmtest.sandbox import BoundedEnvironment
from vnllmtest.suite_file import shorten

if TYPE_CHECKING:
    from vnllmtest.loaders.base import Item
    from vnllmtest.suite import PromptLimits, PromptSpec

Message = dict[str, str]

_ENVIRONMENT = BoundedEnvironment(
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, autoescape=False
)


class PromptError(Exception):
    """A template that cannot be rendered for one item (e.g. it names a field the record lacks)."""


class PromptLimitError(PromptError):
    """A template that went past a rendering limit (prompt.limits: characters or CPU time)."""


@lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """A sandboxed template (suites cannot run code, nor exhaust memory or CPU); raises
    jinja2.TemplateSyntaxError, or jinja2.TemplateError when Python cannot compile it."""
    return _ENVIRONMENT.compile_bounded(source)


def new_quota(limits: PromptLimits | None = None) -> Quota:
    """What one prompt may use while it renders: the suite's prompt.limits, else the defaults."""
    return Quota(limits.max_chars, limits.max_seconds) if limits is not None else Quota()


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


def limit_error(
    spec: PromptSpec, pool: Sequence[Item], item: Item, constants: Mapping[str, Any]
) -> PromptLimitError | None:
    """The limit `item`'s prompt goes past, if any: checked on the first record at collection, so that
    a template that builds too much or runs too long is one suite error, not an error per item. Other
    problems of that record are left to its item."""
    try:
        PromptBuilder(spec, pool, constants).messages(item)
    except PromptLimitError as exc:
        return exc
    except PromptError:
        pass
    return None


def render(source: str, fields: Mapping[str, Any], quota: Quota | None = None, name: str = "prompt template") -> str:
    """`source` rendered over `fields` within `quota` (default limits when None); `name` is the suite
    key of the template, named when a limit stops it."""
    try:
        return (quota or Quota()).render(compile_template(source), fields).strip()
    except LimitExceeded as exc:
        raise PromptLimitError(_limit_message(name, exc)) from None
    except UndefinedError as exc:
        problem = f"{shorten(exc.message or '')}; the record has fields {shorten(str(sorted(fields)))}"
        raise PromptError(f"prompt template: {problem}") from None
    except TemplateSyntaxError as exc:
        problem = f"{shorten(exc.message or '')} (line {exc.lineno} of the template)"
        raise PromptError(f"prompt template: {problem}") from None
    except TemplateError as exc:
        raise PromptError(f"prompt template: {shorten(str(exc))}") from None
    except RecursionError:
        raise PromptError(f"prompt template: {name} recursed too deeply (a macro or loop that calls itself)") from None
    except Exception as exc:  # the template's own runtime errors: 1/0, "a" - 1, a number too long to print
        raise PromptError(f"prompt template: {type(exc).__name__}: {shorten(str(exc))}") from None


def _limit_message(name: str, exc: LimitExceeded) -> str:
    if exc.limit is None:
        return f"{name}: rendering stopped: {exc.message}"
    return (
        f"{name}: rendering stopped: {exc.message}; raise prompt.limits.{exc.limit} in the suite "
        "if the prompt really needs more"
    )


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
        spec, quota = self._spec, new_quota(self._spec.limits)
        own = {**self._constants, **(item.fields if fields is None else fields)}
        messages: list[Message] = []
        if spec.system:
            messages.append({"role": "system", "content": render(spec.system, own, quota, "prompt.system")})
        if spec.fewshot is not None and spec.fewshot.k:
            for shot in [s for s in self._shots if s.id != item.id][: spec.fewshot.k]:
                example = render(spec.template, {**self._constants, **shot.fields}, quota, "prompt.template")
                target = render(spec.fewshot.target, _shot_fields(shot), quota, "prompt.fewshot.target")
                messages += [{"role": "user", "content": example}, {"role": "assistant", "content": target}]
        messages.append({"role": "user", "content": render(spec.template, own, quota, "prompt.template")})
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
