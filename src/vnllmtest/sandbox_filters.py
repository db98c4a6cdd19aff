"""The template filters that can build large values or turn any value into text, each checking the
active `Quota` first: widths and counts before padding, joining and filling; the size of a value (shared
parts counted as often as they appear) before it becomes text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import update_wrapper
from typing import Any

from jinja2 import pass_environment, pass_eval_context
from jinja2.filters import make_attrgetter

from vnllmtest.quota import (
    SEQUENCE,
    active_quota,
    check_printf,
    depth_of,
    replaced_size,
    size_of,
    text_size,
    texts_size,
    ticking,
    whole,
)

_WORDWRAP_STEPS_PER_SECOND = 1e10  # textwrap cuts a long word in about len(word)**2 / width steps
# Filters that turn their value into text first (str(), escaping, quoting): the value is measured before.
_TEXT_FILTERS = (
    "string", "e", "escape", "forceescape", "safe", "trim", "upper", "lower", "capitalize", "title", "striptags",
    "urlize", "urlencode", "truncate", "wordcount", "xmlattr",
)  # fmt: skip


def bounded_filters(stock: dict[str, Any]) -> dict[str, Any]:
    """Replacements for the stock filters (`stock`, by name) that can build large values or make text."""
    return {**{name: _text_first(name, stock[name]) for name in _TEXT_FILTERS}, **_sized(stock)}


def _as_text(value: Any, what: str) -> str:
    """`str(value)`, measured first."""
    if isinstance(value, str):
        return value
    quota = active_quota()
    quota.allow(text_size(value, quota), what)
    return str(value)


def _text_first(name: str, stock: Any) -> Any:
    """Filter `name`, its value measured before the filter turns it into text."""
    skip = 1 if hasattr(stock, "jinja_pass_arg") else 0  # the environment or eval context comes first

    def checked(*args: Any, **kwargs: Any) -> Any:
        if len(args) > skip and not isinstance(args[skip], str):
            quota = active_quota()
            quota.allow(text_size(args[skip], quota), f"|{name}")
        return stock(*args, **kwargs)

    return update_wrapper(checked, stock)


def _sized(stock: dict[str, Any]) -> dict[str, Any]:
    """The filters that can build large values, each checking the size (or time) first."""

    def center(value: Any, width: int = 80) -> str:
        text = _as_text(value, "|center")
        active_quota().allow(max(whole(width), len(text)), "|center")
        return stock["center"](text, width)

    def indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        text = _as_text(s, "|indent")
        step = len(width) if isinstance(width, str) else whole(width)
        active_quota().allow(len(text) + (text.count("\n") + 1) * step, "|indent")
        return stock["indent"](text, width, first, blank)

    @pass_environment
    def wordwrap(
        environment: Any,
        s: Any,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = True,
    ) -> str:
        text, quota, step = _as_text(s, "|wordwrap"), active_quota(), max(whole(width), 1)
        separator = environment.newline_sequence if wrapstring is None else str(wrapstring)
        quota.allow(len(text) + (len(text) // step + text.count("\n") + 1) * len(separator), "|wordwrap")
        if break_long_words:  # textwrap cuts a long word in quadratic time
            steps = sum(len(word) ** 2 // step for word in re.findall(r"\S+", text) if len(word) > step)
            quota.check_time(steps / _WORDWRAP_STEPS_PER_SECOND, "|wordwrap")
        return stock["wordwrap"](environment, text, width, break_long_words, wrapstring, break_on_hyphens)

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        text = _as_text(value, "|format")
        check_printf(active_quota(), text, kwargs or args)
        return stock["format"](text, *args, **kwargs)

    @pass_eval_context
    def join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
        quota = active_quota()
        if attribute is not None:
            value = map(make_attrgetter(eval_ctx.environment, attribute), value)
        items = list(ticking(value, quota))
        separator = _as_text(d, "|join")
        quota.allow(texts_size(items, quota) + len(separator) * max(len(items) - 1, 0), "|join")
        return stock["join"](eval_ctx, items, separator)

    @pass_eval_context
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
        s, old, new = (_as_text(text, "|replace") for text in (s, old, new))
        active_quota().allow(replaced_size(s, old, new, -1 if count is None else count), "|replace")
        return stock["replace"](eval_ctx, s, old, new, count)

    def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
        if fill_with is not None:  # each row is filled up to `linecount` parts
            quota = active_quota()
            quota.allow(whole(linecount) * (1 + size_of(fill_with, quota)), "|batch")
        return stock["batch"](value, linecount, fill_with)

    @pass_eval_context
    def slice_(eval_ctx: Any, value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
        quota = active_quota()
        quota.allow(whole(slices) * (1 if fill_with is None else 1 + size_of(fill_with, quota)), "|slice")
        return stock["slice"](eval_ctx, value, slices, fill_with)

    @pass_environment
    def sum_(environment: Any, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0) -> Any:
        if attribute is not None:
            iterable = map(make_attrgetter(environment, attribute), iterable)
        values = list(ticking(iterable, active_quota()))
        if isinstance(start, str | bytes) or not any(isinstance(value, SEQUENCE) for value in values):
            return stock["sum"](environment, values, start=start)  # numbers, or the error Python gives
        total = start
        for value in values:  # adding lists: each step checked, as `+` is
            total = environment.call_binop(None, "+", total, value)
        return total

    @pass_eval_context
    def tojson(eval_ctx: Any, value: Any, indent: int | str | None = None) -> Any:
        quota, step = active_quota(), len(indent) if isinstance(indent, str) else whole(indent)
        size = 4 * size_of(value, quota)
        quota.allow(size, "|tojson")
        if step:
            quota.allow(size * (1 + step * depth_of(value, {})), "|tojson")
        return stock["tojson"](eval_ctx, value, indent)

    def pprint(value: Any) -> str:
        quota = active_quota()  # pformat indents every level and measures each part again at each
        size = text_size(value, quota)
        quota.allow(size, "|pprint")
        quota.allow(size * (1 + depth_of(value, {})), "|pprint")
        return stock["pprint"](value)  # type: ignore[no-any-return]

    return {
        "center": center, "indent": indent, "wordwrap": wordwrap, "format": format_, "join": join,
        "replace": replace, "batch": batch, "slice": slice_, "sum": sum_, "tojson": tojson, "pprint": pprint,
    }  # fmt: skip


