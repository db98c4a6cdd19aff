"""What one prompt may use while it renders (characters, CPU time) and the checks that keep a template
within it: each estimates the size of a value *before* the operation that would build it."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator, ItemsView, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from typing import Any

from jinja2 import Template, TemplateRuntimeError
from jinja2.utils import Cycler, Namespace

DEFAULT_MAX_CHARS = 1_000_000
DEFAULT_MAX_SECONDS = 5.0
MAX_INT_BITS = 65_536  # far beyond any number a prompt shows; squaring loops stop here
_CHECK_EVERY = 16  # operations between two reads of the CPU clock


class LimitExceeded(TemplateRuntimeError):
    """Rendering stopped at a limit; `limit` names it (`max_chars`, `max_seconds`, or None when fixed)."""

    def __init__(self, message: str, limit: str | None):
        super().__init__(message)
        self.limit = limit


class Quota:
    """The limits of one prompt's rendering (all its turns) and what it has used of them: `max_chars`
    bounds every text or list a template builds and the output as a whole; `max_seconds` is CPU time.
    `passthrough`: characters of record text a token budget cuts to size itself (the budgeted field),
    which the output may hold on top of max_chars."""

    def __init__(
        self, max_chars: int = DEFAULT_MAX_CHARS, max_seconds: float = DEFAULT_MAX_SECONDS, passthrough: int = 0
    ):
        self.max_chars = max_chars
        self.max_seconds = max_seconds
        self.max_output = max_chars + passthrough
        self.deadline = time.thread_time() + max_seconds
        self.produced = 0
        self._ticks = 0

    def tick(self) -> None:
        """One step of work: every few steps, stop if the CPU time is spent."""
        self._ticks += 1
        if self._ticks % _CHECK_EVERY == 0:
            self.check_time()

    def check_time(self, ahead: float = 0.0, what: str = "") -> None:
        """Stop when the CPU time is spent, or would be after `what`, estimated to take `ahead` seconds."""
        if time.thread_time() + ahead <= self.deadline:
            return
        if what:
            message = f"{what} would take about {ahead:.0f} s of CPU time, more than the {self.max_seconds:g} s allowed"
        else:
            message = f"rendering took more than {self.max_seconds:g} s of CPU time"
        raise LimitExceeded(message, "max_seconds")

    def allow(self, size: int, what: str) -> None:
        """Refuse to build `what` when it would have more than max_chars characters (or list items)."""
        self.tick()
        if size > self.max_chars:
            raise LimitExceeded(f"{what} would have {size:,} characters, more than {self.max_chars:,}", "max_chars")

    def allow_output(self, size: int, what: str) -> None:
        """Refuse a block's output of more than max_chars characters (plus the passthrough)."""
        self.tick()
        if size > self.max_output:
            message = f"{what} would have {size:,} characters, more than {self.max_output:,}"
            raise LimitExceeded(message + self._passthrough_note(), "max_chars")

    def emit(self, text: str) -> None:
        """Count output; the prompt's turns together stay within max_chars (plus the passthrough)."""
        self.produced += len(text)
        if self.produced > self.max_output:
            message = f"the prompt grew past {self.max_output:,} characters"
            raise LimitExceeded(message + self._passthrough_note(), "max_chars")
        self.tick()

    def _passthrough_note(self) -> str:
        passed = self.max_output - self.max_chars
        return f" ({self.max_chars:,} and the {passed:,} of the budgeted field)" if passed else ""

    def render(self, template: Template, fields: Mapping[str, Any]) -> str:
        """`template` rendered over `fields` within this quota, stopped as soon as it exceeds it."""
        token = _ACTIVE.set(self)
        parts: list[str] = []
        stream = template.generate(**fields)
        try:
            for part in stream:
                self.emit(part)
                parts.append(part)
        finally:
            stream.close()
            _ACTIVE.reset(token)
        self.check_time()
        return "".join(parts)


_ACTIVE: ContextVar[Quota | None] = ContextVar("vnllmtest_quota", default=None)


def active_quota() -> Quota:
    """The quota of the rendering in progress (default limits when a template is folded while compiling)."""
    return _ACTIVE.get() or Quota()


def size_of(value: Any, quota: Quota | None = None) -> int:
    """Characters of a text, or items of a list, tuple, dict or namespace counted with their contents, as
    if every shared part were copied out (`[[x] * 1000] * 1000` has a million items). With a quota the
    walk checks its deadline and stops as soon as the count passes max_chars (returning that count)."""
    return _walk(value, _items, lambda leaf: len(leaf) if isinstance(leaf, str | bytes) else 1, quota)


def text_size(value: Any, quota: Quota | None = None) -> int:
    """About how many characters `str(value)` has (a container shows its parts' reprs), counted as
    `size_of` counts, without building the text: never less than the real length, a little more for
    texts holding control characters."""
    if isinstance(value, str):
        return len(value)
    return _walk(value, _shown_parts, _repr_size, quota)


def texts_size(values: Iterable[Any], quota: Quota) -> int:
    """Characters of the texts of `values` together (as `join` makes them), counted up to the limit."""
    total = 0
    for value in values:
        total += text_size(value, quota)
        if total > quota.max_chars:
            break
    return total


def _walk(value: Any, parts_of: Any, leaf_size: Any, quota: Quota | None) -> int:
    """The sum of `leaf_size` over the leaves of `value` and of the frames `parts_of` gives its
    containers, a shared container counted once per place it appears and a cycle as a frame. The walk is
    iterative (no depth limit) and opens each container once, so its work is bounded by what it counts."""
    if not isinstance(value, _CONTAINERS):
        return leaf_size(value)  # type: ignore[no-any-return]
    cap = quota.max_chars if quota is not None else None
    totals: dict[int, int] = {}  # id -> size; every container stays alive (value holds it) during the walk
    stack: list[tuple[Any, tuple[int, list[Any]] | None]] = [(value, None)]
    floor = 0  # the frames of the containers opened so far: the result is at least this
    while stack:
        node, opened = stack.pop()
        if opened is None:
            if id(node) in totals:
                continue
            shape = parts_of(node)
            if shape is None:  # a container for one measure, a leaf for the other
                totals[id(node)] = leaf_size(node)
                continue
            totals[id(node)] = shape[0]  # a cycle back to an open container counts its frame ("[...]")
            floor += shape[0]
            if quota is not None:
                quota.tick()
            if cap is not None and floor > cap:
                return floor
            stack.append((node, shape))
            stack.extend((part, None) for part in shape[1] if isinstance(part, _CONTAINERS) and id(part) not in totals)
            continue
        frame, parts = opened
        total = frame + sum(totals[id(p)] if isinstance(p, _CONTAINERS) else leaf_size(p) for p in parts)
        totals[id(node)] = total
        if cap is not None and total > cap:
            return total
    return totals[id(value)]


_VIEWS = (KeysView, ValuesView, ItemsView)
_CONTAINERS = (list, tuple, set, frozenset, dict, Namespace, Cycler, *_VIEWS)


def is_container(value: Any) -> bool:
    """True for the values `size_of` opens: lists, tuples, sets, dicts and their views, namespaces, cyclers."""
    return isinstance(value, _CONTAINERS)


def _mapping_parts(value: Any) -> list[Any] | None:
    """The keys and values of a dict or of a Jinja namespace's attributes, or what a dict view shows."""
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, dict | ItemsView):
        mapping = value if isinstance(value, dict) else value.mapping  # type: ignore[attr-defined]
        return [*mapping.keys(), *mapping.values()]
    return list(value) if isinstance(value, KeysView | ValuesView) else None


def _items(value: Any) -> tuple[int, list[Any]] | None:
    """A container's own item count and its parts (for `size_of`); None for anything else."""
    if isinstance(value, list | tuple | set | frozenset):
        return len(value), list(value)
    if isinstance(value, Cycler):
        return len(value.items), list(value.items)
    parts = _mapping_parts(value)
    return None if parts is None else (len(parts), parts)


def _shown_parts(value: Any) -> tuple[int, list[Any]] | None:
    """The characters a container's repr adds to its parts' (brackets, separators; at least as many as
    it shows), and its parts; None for what shows no parts (a cycler shows its type and address)."""
    if isinstance(value, list | tuple | set | frozenset):
        return 13 + 2 * len(value), list(value)  # "frozenset({" + "})" at most, ", " between parts
    parts = _mapping_parts(value)
    return None if parts is None else (16 + 3 * len(parts), parts)  # "<Namespace {" or "dict_items([", ": " "(, )"


def _repr_size(value: Any) -> int:
    """Characters of `repr(value)` for a value inside a container (never fewer)."""
    if isinstance(value, str):
        quotes = value.count("'") + value.count('"')
        if value.isprintable():
            return len(value) + 2 + value.count("\\") + quotes
        step = 1 << 16  # escapes measured a slice at a time: never a copy ten times the text
        return 2 + quotes + sum(len(repr(value[i : i + step])) - 2 for i in range(0, len(value), step))
    if isinstance(value, bytes):
        return 4 * len(value) + 3
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 3 // 10 + 2
    if isinstance(value, float):
        return 24
    return 64  # objects show their type and address


def whole(value: Any) -> int:
    """An argument that should be a count or width, as one (anything else counts as 0: Python refuses it)."""
    return value if isinstance(value, int) else 0


SEQUENCE = str | bytes | list | tuple
_PRINTF = re.compile(  # one %-conversion: %(key)-08.3f, %*d, %%
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<kind>.)", re.S
)


def check_binop(quota: Quota, operator: str, left: Any, right: Any) -> None:
    """`left operator right` within the limits: repetition, powers, %-formatting and concatenation."""
    quota.tick()
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length())
        elif isinstance(left, SEQUENCE) and isinstance(right, int):
            quota.allow(size_of(left, quota) * right, "a repeated text or list")
        elif isinstance(right, SEQUENCE) and isinstance(left, int):
            quota.allow(size_of(right, quota) * left, "a repeated text or list")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        _check_bits(int(right * math.log2(abs(left))) + 1)
    elif operator == "%" and isinstance(left, str | bytes):
        check_printf(quota, left, right)
    elif operator == "+" and isinstance(left, SEQUENCE) and isinstance(right, SEQUENCE):
        quota.allow(size_of(left, quota) + size_of(right, quota), "a joined text or list")


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise LimitExceeded(f"a number would have about {bits:,} bits; templates stop at {MAX_INT_BITS:,}", None)


def check_printf(quota: Quota, template: str | bytes, args: Any) -> None:
    """`template % args` within the character limit: widths, precisions and the values it shows."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    positional = list(args) if isinstance(args, tuple) else [args]
    index, size = 0, len(text)
    for match in _PRINTF.finditer(text):
        if match["kind"] == "%":
            continue
        for part in ("width", "precision"):
            if match[part] == "*":
                size += whole(positional[index]) if index < len(positional) else 0
                index += 1
            elif match[part]:
                size += int(match[part])
        if match["key"] is not None and isinstance(args, Mapping):
            value = args.get(match["key"])
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        if match["kind"] in "ra":  # a repr, with each character escaped in up to 10 for %a
            size += text_size((value,), quota) * (10 if match["kind"] == "a" else 1)
        else:
            size += text_size(value, quota)
        quota.allow(size, "a %-formatted text")


def check_method(quota: Quota, function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a string or int method that can build a large value; returns the arguments to
    call it with (an iterator given to `join` is read once, here)."""
    owner, name = getattr(function, "__self__", None), getattr(function, "__name__", "")
    if isinstance(owner, str | bytes):
        if name in ("center", "ljust", "rjust", "zfill") and args:
            quota.allow(whole(args[0]), f"{name}()")
        elif name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            quota.allow(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * whole(tab), name + "()")
        elif name == "replace" and len(args) >= 2 and all(isinstance(arg, type(owner)) for arg in args[:2]):
            count = args[2] if len(args) > 2 else kwargs.get("count", -1)
            quota.allow(replaced_size(owner, args[0], args[1], count), "replace()")
        elif name == "join" and args:
            items = list(ticking(args[0], quota))
            quota.allow(texts_size(items, quota) + len(owner) * max(len(items) - 1, 0), "join()")
            args = (items, *args[1:])
        elif name == "translate" and args and isinstance(owner, str):
            table = args[0]
            values = table.values() if isinstance(table, Mapping) else table if isinstance(table, SEQUENCE) else ()
            longest = max((len(v) for v in values if isinstance(v, str)), default=1)
            quota.allow(len(owner) * max(longest, 1), "translate()")
    elif isinstance(owner, int) and name == "to_bytes":
        quota.allow(whole(args[0] if args else kwargs.get("length", 1)), "to_bytes()")
    return args


def replaced_size(text: str | bytes, old: str | bytes, new: str | bytes, count: Any) -> int:
    """Characters of `text` after replacing `old` by `new` (at most `count` times when count >= 0)."""
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def ticking(iterable: Iterable[Any], quota: Quota) -> Iterator[Any]:
    """`iterable`, checking the deadline at every step."""
    for value in iterable:
        quota.tick()
        yield value


def depth_of(value: Any, seen: dict[int, int]) -> int:
    """How deeply lists and dicts nest in `value`."""
    if not isinstance(value, list | tuple | dict) or not value:
        return 0
    if id(value) not in seen:
        seen[id(value)] = 0  # a cycle counts once
        parts = value.values() if isinstance(value, dict) else value
        seen[id(value)] = 1 + max(depth_of(part, seen) for part in parts)
    return seen[id(value)]
