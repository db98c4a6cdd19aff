"""Judge rubrics and their YAML form (packaged in rubrics.yaml, or inline in a suite), and the judgment a
judge's reply is read into. Shared by the judge prompt (`vnllmtest.judge`) and the reply readers
(`vnllmtest.judge_parse`, `judge_text`, `judge_json`), below all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_NAMES = ("score", "overall")  # criteria would collide with the metrics judge_score / judge_overall
_RUBRIC_KEYS = {"description", "scale", "holistic", "criteria"}
_SCORE_KEYS = {"name", "label", "description", "weight", "aliases"}


class JudgeParseError(Exception):
    """A judge reply without a usable, in-range, unambiguous score for everything the rubric asks."""


@dataclass(frozen=True)
class Criterion:
    """One score the judge gives: its JSON key, Vietnamese label, what it rates, and other names
    judges write for it (e.g. English labels)."""

    name: str
    label: str
    description: str
    weight: float = 1.0
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    name: str
    description: str
    criteria: tuple[Criterion, ...]
    holistic: Criterion | None = None
    low: int = 1
    high: int = 10

    @property
    def scored(self) -> tuple[Criterion, ...]:
        """Everything the judge scores: the holistic score first, then the criteria."""
        return ((self.holistic,) if self.holistic else ()) + self.criteria

    def overall(self, scores: Mapping[str, float]) -> float | None:
        """Weighted mean of the criterion scores (None when the rubric has no criteria)."""
        if not self.criteria:
            return None
        total = sum(c.weight for c in self.criteria)
        return sum(scores[c.name] * c.weight for c in self.criteria) / total

    def headline(self, scores: Mapping[str, float]) -> float:
        """The number `pass_min` is compared with: the holistic score if any, else the overall."""
        if self.holistic is not None:
            return scores[self.holistic.name]
        overall = self.overall(scores)
        assert overall is not None  # a rubric has a holistic score or criteria
        return overall


@dataclass(frozen=True)
class Judgment:
    scores: dict[str, float]  # by JSON key, in rubric order (holistic first)
    holistic: float | None
    overall: float | None
    rationale: str


def rubric_from_mapping(name: str, data: Mapping[str, Any]) -> Rubric:
    """A rubric from its YAML form (packaged or inline in a suite); ValueError says what is wrong."""
    where = f"rubric '{name}'"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping with 'holistic' and/or 'criteria'")
    unknown = sorted(set(map(str, data)) - _RUBRIC_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key '{unknown[0]}'; expected {', '.join(sorted(_RUBRIC_KEYS))}")
    criteria = data.get("criteria", [])
    if not isinstance(criteria, list):
        raise ValueError(f"{where}: 'criteria' must be a list")
    holistic = data.get("holistic")
    if not criteria and holistic is None:
        raise ValueError(f"{where}: give a 'holistic' score, 'criteria', or both")
    parsed = [_criterion(where, f"criterion {n}", entry) for n, entry in enumerate(criteria, start=1)]
    for criterion in parsed:
        if criterion.name in RESERVED_NAMES:
            raise ValueError(
                f"{where}: criterion name '{criterion.name}' is reserved (judge_{criterion.name} is another metric)"
            )
    whole = None
    if holistic is not None:
        whole = _criterion(where, "holistic", {"name": "score", "label": "Điểm tổng thể", **_mapping(where, holistic)})
    names = [c.name for c in ([whole] if whole else []) + parsed]
    if len(set(names)) < len(names):
        raise ValueError(f"{where}: score names must differ, got {', '.join(names)}")
    scale = _mapping(where, data.get("scale", {"min": 1, "max": 10}))
    low, high = scale.get("min", 1), scale.get("max", 10)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise ValueError(f"{where}: scale min and max must be whole numbers")
    if low >= high:
        raise ValueError(f"{where}: scale min {low} must be below max {high}")
    return Rubric(name, str(data.get("description", "")), tuple(parsed), whole, low, high)


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    return value


def _criterion(where: str, what: str, entry: Any) -> Criterion:
    if not isinstance(entry, Mapping) or not entry.get("name") or not entry.get("description"):
        raise ValueError(f"{where}: {what} needs 'name' and 'description'")
    unknown = sorted(set(map(str, entry)) - _SCORE_KEYS)
    if unknown:
        raise ValueError(f"{where}: {what} has unknown key '{unknown[0]}'; expected {', '.join(sorted(_SCORE_KEYS))}")
    name = str(entry["name"])
    if not _NAME.match(name):
        raise ValueError(f"{where}: {what} name '{name}' must be lowercase letters, digits and _ (it names a metric)")
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        raise ValueError(f"{where}: '{name}' needs a positive weight, got {weight!r}")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ValueError(f"{where}: '{name}': 'aliases' must be a list of names")
    return Criterion(name, str(entry.get("label") or name), str(entry["description"]), float(weight), tuple(aliases))


@cache
def packaged_rubrics() -> dict[str, Rubric]:
    """The rubrics shipped in the package's rubrics.yaml, by name."""
    raw = yaml.safe_load(resources.files("vnllmtest").joinpath("rubrics.yaml").read_text("utf-8"))
    return {name: rubric_from_mapping(name, entry) for name, entry in raw.items()}
