"""A Jinja2 sandbox whose templates cannot exhaust memory or CPU time.

The stock sandbox keeps templates away from Python internals, not from building a 4-gigabyte string or
looping 10^10 times. Here every operation that can make a value much larger than its inputs (`*`, `**`,
`%`, `+`, `~`, `str.format`, the padding and joining filters and string methods, `lipsum`) is checked
against the active `Quota` *before* it runs; output is counted as it is produced, block buffers
(macros, `set` and `filter` blocks) included; loops, calls and operators check a CPU-time deadline.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Iterator
from functools import update_wrapper
from string import Formatter
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator
from jinja2.filters import make_attrgetter
from jinja2.runtime import LoopContext, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from vnllmtest.quota import (
    SEQUENCE,
    Quota,
    active_quota,
    check_binop,
    check_method,
    check_printf,
    depth_of,
    replaced_size,
    size_of,
    text_size,
    ticking,
    whole,
)

_WORDWRAP_STEPS_PER_SECOND = 1e10  # textwrap cuts a long word in about len(word)**2 / width steps
_LOOP, _CONCAT = "vnllmtest_loop", "vnllmtest_concat"  # filters the compiler wraps loops and `~` in
_FORMATS = ("format", "format_map")


class _Loop:
    """A `{% for %}` loop's iterable that checks the deadline on every step (and keeps its length)."""

    def __init__(self, iterable: Iterable[Any], quota: Quota):
        self._iterable, self._quota = iterable, quota

    def __iter__(self) -> Iterator[Any]:
        return ticking(self._iterable, self._quota)

    def __len__(self) -> int:
        return len(self._iterable)  # type: ignore[arg-type]  # TypeError when it has none, as for the original


class _Buffer(list):
    """The output of a block (macro, `set`, `filter`, `call`, recursive loop), bounded while it grows."""

    def __init__(self, quota: Quota):
        super().__init__()
        self._quota, self._chars = quota, 0

    def append(self, text: str) -> None:
        self._chars += len(text)
        self._quota.allow(self._chars, "a block's output")
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        texts = tuple(texts)
        self._chars += sum(map(len, texts))
        self._quota.allow(self._chars, "a block's output")
        super().extend(texts)


class _Generator(CodeGenerator):
    """Jinja's compiler, with block output collected in bounded buffers instead of plain lists."""

    def buffer(self, frame: Any) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")


class _Guard(NodeTransformer):
    """Wraps every loop's iterable and every `~` in the filters that bound them."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.Tuple(node.nodes, "load", lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT, [], [], None, None, lineno=node.lineno)


class _CheckedFormat:
    """`str.format`: no field wider than the limit, and at most the limit in all."""

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._chars = 0
        return super().vformat(format_string, args, kwargs)  # type: ignore[misc]

    def format_field(self, value: Any, format_spec: str) -> Any:
        quota = active_quota()
        quota.allow(max((int(n) for n in re.findall(r"\d+", format_spec)), default=0), "a format() field")
        text = super().format_field(value, format_spec)  # type: ignore[misc]
        self._chars += len(text)
        quota.allow(self._chars, "a format() result")
        return text


class _Formatter(_CheckedFormat, SandboxedFormatter):
    pass


class _EscapeFormatter(_CheckedFormat, SandboxedEscapeFormatter):
    pass


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every value a template builds, its output and its CPU time bounded
    by the active `Quota`. Compile templates with `compile_bounded`, which also refuses include/import/extends."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Generator

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.filters.update(_bounded_filters(dict(self.filters)))
        self.filters[_LOOP] = lambda iterable: _Loop(iterable, active_quota())
        self.filters[_CONCAT] = _concat
        stock_lipsum = self.globals["lipsum"]

        def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
            active_quota().allow(whole(n) * whole(max) * 12, "lipsum()")
            return stock_lipsum(n, html, min, max)

        self.globals["lipsum"] = lipsum

    def compile_bounded(self, source: str) -> Template:
        """A template from `source`, loops and `~` guarded; TemplateSyntaxError for what cannot compile."""
        try:
            tree = self.parse(source)
            for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
                problem = "suite templates cannot include, import or extend other templates"
                raise TemplateSyntaxError(problem, node.lineno)
            tree = _Guard().visit(tree)
            tree.set_environment(self)
            return self.from_string(tree)
        except TemplateError:
            raise
        except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError) as exc:  # Python's own limits
            raise TemplateError(f"the template cannot be compiled ({type(exc).__name__}: {str(exc)[:200]})") from None

    def bounded_buffer(self) -> _Buffer:
        """A block's output buffer (the compiled code calls this where Jinja would make a list)."""
        return _Buffer(active_quota())

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        """Join a block's output (`self.block()` streams it here unbuffered), stopping at the limit."""
        quota, kept, size = active_quota(), [], 0
        for part in parts:
            size += len(part)
            quota.allow(size, "a block's output")
            kept.append(part)
        return "".join(kept)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(active_quota(), operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        quota = active_quota()
        quota.tick()
        if isinstance(__obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (_Loop(args[0], quota), *args[1:])
        args = check_method(quota, __obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """`str.format`/`format_map` through the sandbox's formatter, with widths and size checked."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in _FORMATS:
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        formatter: Formatter = (
            _EscapeFormatter(self, escape=owner.escape) if isinstance(owner, Markup) else _Formatter(self)
        )
        as_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if as_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)


@pass_eval_context
def _concat(eval_ctx: Any, parts: tuple[Any, ...]) -> str:
    """`a ~ b`: the same text Jinja builds, refused first when it would be too long."""
    texts = [part if isinstance(part, str) else str(part) for part in parts]
    active_quota().allow(sum(map(len, texts)), "a text joined with ~")
    return markup_join(texts) if eval_ctx.volatile or eval_ctx.autoescape else "".join(texts)


def _bounded_filters(stock: dict[str, Any]) -> dict[str, Any]:
    """The filters that can build large values, each checking the size (or time) first."""

    def center(value: Any, width: int = 80) -> str:
        active_quota().allow(whole(width), "|center")
        return stock["center"](value, width)

    def indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        text = str(s)
        step = len(width) if isinstance(width, str) else whole(width)
        active_quota().allow(len(text) + (text.count("\n") + 1) * step, "|indent")
        return stock["indent"](s, width, first, blank)

    @pass_environment
    def wordwrap(
        environment: Any,
        s: Any,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = True,
    ) -> str:
        text, quota, step = str(s), active_quota(), max(whole(width), 1)
        separator = environment.newline_sequence if wrapstring is None else str(wrapstring)
        quota.allow(len(text) + (len(text) // step + text.count("\n") + 1) * len(separator), "|wordwrap")
        if break_long_words:  # textwrap cuts a long word in quadratic time
            steps = sum(len(word) ** 2 // step for word in re.findall(r"\S+", text) if len(word) > step)
            quota.check_time(steps / _WORDWRAP_STEPS_PER_SECOND, "|wordwrap")
        return stock["wordwrap"](environment, s, width, break_long_words, wrapstring, break_on_hyphens)

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        check_printf(active_quota(), str(value), kwargs or args)
        return stock["format"](value, *args, **kwargs)

    @pass_eval_context
    def join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
        quota = active_quota()
        if attribute is not None:
            value = map(make_attrgetter(eval_ctx.environment, attribute), value)
        items = list(ticking(value, quota))
        quota.allow(sum(map(text_size, items)) + len(str(d)) * max(len(items) - 1, 0), "|join")
        return stock["join"](eval_ctx, items, d)

    @pass_eval_context
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
        active_quota().allow(replaced_size(s, old, new, -1 if count is None else count), "|replace")
        return stock["replace"](eval_ctx, s, old, new, count)

    def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
        if fill_with is not None:
            active_quota().allow(whole(linecount), "|batch")
        return stock["batch"](value, linecount, fill_with)

    @pass_eval_context
    def slice_(eval_ctx: Any, value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
        active_quota().allow(whole(slices), "|slice")
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
        size = 4 * size_of(value)
        quota.allow(size, "|tojson")
        if step:
            quota.allow(size * (1 + step * depth_of(value, {})), "|tojson")
        return stock["tojson"](eval_ctx, value, indent)

    return {
        "center": center, "indent": indent, "wordwrap": wordwrap, "format": format_, "join": join,
        "replace": replace, "batch": batch, "slice": slice_, "sum": sum_, "tojson": tojson,
    }  # fmt: skip


