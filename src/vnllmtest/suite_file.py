"""Reading suite files safely: size, nesting, alias expansion and duplicate keys bounded while the YAML is
composed, and errors that name the file and line without echoing unbounded values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vnllmtest.clipping import described, shown
from vnllmtest.suite_marker import MAX_SUITE_BYTES

MAX_DEPTH = 64  # nesting of mappings and lists
MAX_ALIAS_NODES = 10_000  # nodes that aliases may repeat, in all
MAX_ALIAS_CHARS = MAX_SUITE_BYTES  # characters of text that aliases may repeat, in all
MAX_PROBLEMS = 20  # validation problems listed in one message


class SuiteError(Exception):
    """A suite file that cannot be used; the message names the file, the place and the fix."""


def read_suite_yaml(path: Path) -> tuple[bytes, Any, yaml.Node | None]:
    """The file's bytes, its YAML data and the composed node tree (for line numbers)."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_SUITE_BYTES + 1)
    if len(raw) > MAX_SUITE_BYTES:
        raise SuiteError(f"{path}: the suite file is larger than {MAX_SUITE_BYTES:,} bytes; suites are a few kilobytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SuiteError(f"{path}:{line}: not valid UTF-8 (byte {exc.start})") from None
    loader = None
    try:
        loader = _BoundedLoader(text)
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        problem = f"control character U+{exc.character:04X} is not allowed"
        raise SuiteError(f"{path}:{line}: YAML syntax error: {problem}") from None
    except _Refused as exc:
        raise SuiteError(f"{path}{_mark(exc)}: {exc.problem}") from None
    except yaml.constructor.ConstructorError as exc:
        problem = shown(_yaml_problem(exc), 300)
        raise SuiteError(
            f"{path}{_mark(exc)}: unsupported YAML value: {problem} (suites are read with yaml.safe_load: "
            "plain mappings, lists, strings, numbers and booleans only)"
        ) from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}{_mark(exc)}: YAML syntax error: {shown(_yaml_problem(exc), 300)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return raw, data, root


class _Refused(yaml.MarkedYAMLError):
    """A YAML document refused for its shape (nesting, alias expansion, duplicate keys)."""


class _Frame:
    """An open mapping or list while composing: its anchor, node and character counts (aliases
    expanded) and keys."""

    def __init__(self, anchor: str | None, mapping: bool):
        self.anchor, self.nodes, self.chars = anchor, 1, 0
        self.keys: dict[str, int] | None = {} if mapping else None
        self.expect_key = mapping


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses, while it reads the events, documents nested deeper than MAX_DEPTH,
    aliases that repeat more than MAX_ALIAS_NODES nodes or MAX_ALIAS_CHARS characters of text in all
    ("billion laughs", or one long text repeated), and a key given twice in one mapping (YAML would keep
    only the last)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._frames: list[_Frame] = []
        self._anchored: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, characters)
        self._repeated = (0, 0)

    def get_event(self) -> yaml.Event:
        event = super().get_event()
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self._frames) >= MAX_DEPTH:
                problem = f"refused: mappings and lists nest deeper than {MAX_DEPTH} levels"
                raise _Refused(problem=problem, problem_mark=event.start_mark)
            self._key_or_value(event)
            self._frames.append(_Frame(event.anchor, isinstance(event, yaml.MappingStartEvent)))
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = self._frames.pop()
            self._counted(frame.anchor, frame.nodes, frame.chars)
        elif isinstance(event, yaml.ScalarEvent):
            self._key_or_value(event)
            self._counted(event.anchor, 1, len(event.value))
        elif isinstance(event, yaml.AliasEvent):
            self._key_or_value(event)
            nodes, chars = self._anchored.get(event.anchor, (1, 0))
            self._repeated = (self._repeated[0] + nodes, self._repeated[1] + chars)
            for count, bound, unit in zip(self._repeated, (MAX_ALIAS_NODES, MAX_ALIAS_CHARS), ("nodes", "characters")):
                if count > bound:
                    raise _Refused(
                        problem=f"refused: YAML aliases (*{shown(event.anchor, 40)} here) repeat more than "
                        f"{bound:,} {unit} in all; write the values out instead",
                        problem_mark=event.start_mark,
                    )
            self._counted(None, nodes, chars)
        return event

    def _counted(self, anchor: str | None, nodes: int, chars: int) -> None:
        if anchor is not None:
            self._anchored[anchor] = (nodes, chars)
        if self._frames:
            self._frames[-1].nodes += nodes
            self._frames[-1].chars += chars

    def _key_or_value(self, event: yaml.Event) -> None:
        """Track keys of the enclosing mapping; a plain key seen twice is refused."""
        if not self._frames or self._frames[-1].keys is None:
            return
        frame = self._frames[-1]
        if frame.expect_key and isinstance(event, yaml.ScalarEvent) and event.value != "<<":
            if event.value in frame.keys:
                raise _Refused(
                    problem=f"key '{shown(event.value, 80)}' appears twice in this mapping (first on line "
                    f"{frame.keys[event.value]}); YAML would silently keep only the last",
                    problem_mark=event.start_mark,
                )
            frame.keys[event.value] = event.start_mark.line + 1
        frame.expect_key = not frame.expect_key

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value Python cannot build (a 5,000-digit number, 30 February) is a YAML error at its line."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            problem = f"cannot read this value ({shown(exc, 120)})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _mark(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    return ", ".join(p for p in parts if p) or str(exc)


def describe_validation(path: Path, root: yaml.Node | None, exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem (at most MAX_PROBLEMS), each naming the line and key; values are shortened."""
    count = exc.error_count()
    lines = [f"{path}: invalid suite ({count} problem{'s' * (count > 1)}):"]
    for error in exc.errors()[:MAX_PROBLEMS]:
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        where = f"line {line_of(root, loc)}"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(_allowed_keys(model, loc[:-1])))
            lines.append(f"  {where}: {shown(key, 120)}: unknown key; expected one of: {allowed}")
        elif error["type"] == "missing":
            lines.append(f"  {where}: {key}: required key is missing")
        else:
            got = error.get("input")
            value = "" if isinstance(got, dict | list) else f" (got {described(got)})"
            lines.append(f"  {where}: {shown(key, 120)}: {shown(error['msg'], 300)}{value}")
    if count > MAX_PROBLEMS:
        lines.append(f"  … and {count - MAX_PROBLEMS} more problems")
    return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        kinds = getattr(field.annotation, "__args__", (field.annotation,)) if field else ()
        nested = [kind for kind in kinds if _is_model(kind)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def line_of(root: yaml.Node | None, loc: tuple[str, ...]) -> int:
    """1-based line of the deepest YAML node that `loc` reaches."""
    if root is None:
        return 1
    node = root
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            child = node.value[int(part)]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1
