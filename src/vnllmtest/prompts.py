"""Prompt rendering: sandboxed, resource-bounded Jinja2 templates over item fields, few-shot turns, chat messages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, meta

from vnllmtest.budget import bounded, field_chars
from vnllmtest.clipping import shown
from vnllmtest.messages import Message
from vnllmtest.quota import LimitExceeded, Quota
from vnllmtest.sandbox import BoundedEnvironment

if TYPE_CHECKING:
    from vnllmtest.loaders.base import Item
    from vnllmtest.prompt_spec import PromptLimits, PromptSpec


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


def new_quota(limits: PromptLimits | None = None, passthrough: int = 0) -> Quota:
    """What one prompt may use while it renders: the suite's prompt.limits, else the defaults, and the
    characters of a budgeted field the output may hold beyond them."""
    if limits is None:
        return Quota(passthrough=passthrough)
    return Quota(limits.max_chars, limits.max_seconds, passthrough)


def template_variables(spec: PromptSpec) -> set[str]:
    """The variables the system and user templates read (an item's fields, the suite's constants)."""
    used: set[str] = set()
    for source in (spec.system, spec.template):
        if source:
            used |= meta.find_undeclared_variables(_ENVIRONMENT.parse(source))
    return used


def unknown_fields(spec: PromptSpec, items: Sequence[Item], constants: Mapping[str, Any]) -> list[str]:
    """Variables the system and user templates use that no item has as a field (nor the suite as a
    constant, nor Jinja as a global): such a template cannot render for any record."""
    known = set(constants) | set(_ENVIRONMENT.globals)
    for item in items:
        known |= set(item.fields)
    return sorted(template_variables(spec) - known)


def limit_error(
    spec: PromptSpec, pool: Sequence[Item], item: Item, constants: Mapping[str, Any]
) -> PromptLimitError | None:
    """The limit the template goes past whatever the record, if any: checked on the first record at
    collection, so that a template that builds too much or runs too long is one suite error, not an
    error (and the same wasted rendering) per item. When the record's own size is the cause (its texts
    cut to a few hundred characters render within the limits), the record is left to its item, as are
    its other problems. A budgeted field is first cut to the budget's bound, as the item cuts it."""
    builder = PromptBuilder(spec, pool, constants)
    fields = bounded(item.fields, spec.budget)[0] if spec.budget is not None else item.fields
    try:
        builder.messages(item, fields)
        return None
    except PromptLimitError as exc:
        error = exc
    except PromptError:
        return None
    try:
        builder.messages(item, {name: _sample(value) for name, value in fields.items()})
    except PromptLimitError:
        return error
    except PromptError:
        pass
    return None


def _sample(value: Any) -> Any:
    """A record value cut to a small sample of itself (texts to 300 characters, lists to 10 parts)."""
    if isinstance(value, str):
        return value[:300]
    if isinstance(value, list | tuple):
        return [_sample(part) for part in value[:10]]
    if isinstance(value, dict):
        return {key: _sample(part) for key, part in list(value.items())[:10]}
    return value


def render(source: str, fields: Mapping[str, Any], quota: Quota | None = None, name: str = "prompt template") -> str:
    """`source` rendered over `fields` within `quota` (default limits when None); `name` is the suite
    key of the template, named when a limit stops it."""
    try:
        return (quota or Quota()).render(compile_template(source), fields).strip()
    except LimitExceeded as exc:
        raise PromptLimitError(_limit_message(name, exc)) from None
    except UndefinedError as exc:
        problem = f"{shown(exc.message or '', 300)}; the record has fields {shown(sorted(fields), 300)}"
        raise PromptError(f"prompt template: {problem}") from None
    except TemplateSyntaxError as exc:
        problem = f"{shown(exc.message or '', 300)} (line {exc.lineno} of the template)"
        raise PromptError(f"prompt template: {problem}") from None
    except TemplateError as exc:
        raise PromptError(f"prompt template: {shown(exc, 300)}") from None
    except RecursionError:
        raise PromptError(f"prompt template: {name} recursed too deeply (a macro or loop that calls itself)") from None
    except MemoryError:  # a limit should have stopped it first; a limit error, so it is one suite error
        raise PromptLimitError(f"{name}: rendering stopped: Python ran out of memory building the prompt") from None
    except Exception as exc:  # the template's own runtime errors: 1/0, "a" - 1, a number too long to print
        raise PromptError(f"prompt template: {type(exc).__name__}: {shown(exc, 300)}") from None


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
        spec = self._spec
        own = {**self._constants, **(item.fields if fields is None else fields)}
        passthrough = field_chars(own.get(spec.budget.field)) if spec.budget is not None else 0
        quota = new_quota(spec.limits, passthrough)
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
