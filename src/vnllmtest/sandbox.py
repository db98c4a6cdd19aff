"""A Jinja2 sandbox whose templates cannot exhaust memory or CPU time.

The stock sandbox keeps templates away from Python internals, not from building a 4-gigabyte string or
looping 10^10 times. Here every operation that can make a value much larger than its inputs (`*`, `**`,
`%`, `+`, `~`, `str.format`, the padding and joining filters and string methods, `lipsum`) is checked
against the active `Quota` *before* it runs; every list, tuple, dict or namespace a template builds (a
literal, a call's result) is measured as if its shared parts were copied out, and so is every value
before it becomes text (`{{ x }}`, `~`, formatting, the text filters): `[a, a]` nested thirty times is
refused long before `str()` would build its gigabytes. Output is counted as it is produced, block buffers
(macros, `set` and `filter` blocks) included; loops, calls, operators and measuring check a CPU-time deadline.

It relies on Jinja internals that 3.1.5 to 3.1.x provide (`CodeGenerator.buffer`, `wrap_str_format`,
`Namespace`'s attribute dict); the import fails when they are missing, never the checks silently.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Iterator
from functools import update_wrapper
from string import Formatter
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator
from jinja2.runtime import LoopContext, markup_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from vnllmtest.quota import (
    Quota,
    active_quota,
    check_binop,
    check_method,
    is_container,
    size_of,
    text_size,
    texts_size,
    ticking,
    whole,
)
from vnllmtest.sandbox_filters import bounded_filters

if not (
    hasattr(CodeGenerator, "buffer")
    and hasattr(SandboxedEnvironment, "wrap_str_format")
    and hasattr(Namespace(), "_Namespace__attrs")
):
    raise ImportError(
        "vnllmtest's template sandbox needs Jinja2 3.1.5 or a later 3.1 release (pip install 'jinja2>=3.1.5,<3.2')"
    )

_LOOP, _CONCAT, _BUILT = "vnllmtest_loop", "vnllmtest_concat", "vnllmtest_built"  # filters the compiler adds
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
        self._quota.allow_output(self._chars, "a block's output")
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        texts = tuple(texts)
        self._chars += sum(map(len, texts))
        self._quota.allow_output(self._chars, "a block's output")
        super().extend(texts)


class _Generator(CodeGenerator):
    """Jinja's compiler, with block output collected in bounded buffers instead of plain lists."""

    def buffer(self, frame: Any) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")


class _Guard(NodeTransformer):
    """Wraps every loop's iterable, every `~` and every list, tuple and dict literal in the filters that
    bound them."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.Tuple(node.nodes, "load", lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT, [], [], None, None, lineno=node.lineno)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._built(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._built(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        return self._built(node) if node.ctx == "load" else self.generic_visit(node)

    def _built(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _BUILT, [], [], None, None, lineno=node.lineno)


class _CheckedFormat:
    """`str.format`: no field wider than the limit, and at most the limit in all."""

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._chars = 0
        return super().vformat(format_string, args, kwargs)  # type: ignore[misc]

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:  # !r and !a show a repr (!a escaping each character in up to 10)
            quota = active_quota()
            quota.allow(text_size((value,), quota) * (10 if conversion == "a" else 1), "a format() field")
        return super().convert_field(value, conversion)  # type: ignore[misc]

    def format_field(self, value: Any, format_spec: str) -> Any:
        quota = active_quota()
        quota.allow(max((int(n) for n in re.findall(r"\d+", format_spec)), default=0), "a format() field")
        quota.allow(self._chars + text_size(value, quota), "a format() result")
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
        self.filters.update(bounded_filters(dict(self.filters)))
        self.filters[_LOOP] = lambda iterable: _Loop(iterable, active_quota())
        self.filters[_CONCAT] = _concat
        self.filters[_BUILT] = _built
        self.finalize = _shown
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
            quota.allow_output(size, "a block's output")
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
        result = super().call(__context, __obj, *args, **kwargs)
        if is_container(result):  # dict(a=x, b=x), namespace(), cycler(), {}.fromkeys(range(9999), x)
            quota.allow(size_of(result, quota), f"{getattr(__obj, '__name__', 'a call')}()")
        return result

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
    quota = active_quota()
    quota.allow(texts_size(parts, quota), "a text joined with ~")
    texts = [part if isinstance(part, str) else str(part) for part in parts]
    return markup_join(texts) if eval_ctx.volatile or eval_ctx.autoescape else "".join(texts)


def _built(value: Any) -> Any:
    """A list, tuple or dict the template writes out, refused when its parts, shared ones counted
    each time they appear, pass the limit."""
    quota = active_quota()
    quota.allow(size_of(value, quota), "a list or dict the template writes")
    return value


def _shown(value: Any) -> Any:
    """`{{ value }}`: a value that is not text yet is measured before Jinja calls str() on it."""
    if not isinstance(value, str):
        quota = active_quota()
        quota.allow(text_size(value, quota), "a value shown with {{ }}")
    return value
