"""LLM-as-judge rubrics: the prompt a judge model gets, and robust parsing of the scores it gives.

A judge is asked for one JSON object with an integer per criterion and a short rationale. Local
judges often wrap it in prose or code fences, use the Vietnamese labels, write `8/10`, or answer
with lines like `Độ chính xác: 8`; all of these parse. Anything that does not yield an in-range
score for every criterion raises JudgeParseError: never a silent default.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from vnllmtest.prompts import Message

RATIONALE_KEYS = ("ly do", "ly_do", "lydo", "rationale", "reason", "reasoning", "giai thich", "nhan xet")
_NUMBER = r"(\d+(?:[.,]\d+)?)(?:\s*/\s*(\d+))?(?!\s*[-–]\s*\d)"  # not the start of a range like 1-10
# `Độ chính xác: 8`, `**Accuracy**: 9`, `"coherence": 7` (also inside broken JSON)
_LABELLED = re.compile(rf"([^\n:：=,{{}}\"*]{{1,40}})[\"*]*\s*[:：=]\s*[\"*]*\s*{_NUMBER}")


class JudgeParseError(Exception):
    """A judge reply without a usable, in-range score for every criterion."""


@dataclass(frozen=True)
class Criterion:
    name: str
    label: str
    description: str
    weight: float = 1.0


@dataclass(frozen=True)
class Rubric:
    name: str
    description: str
    criteria: tuple[Criterion, ...]
    low: int = 1
    high: int = 10

    def overall(self, scores: Mapping[str, float]) -> float:
        """Weighted mean of the criterion scores."""
        total = sum(c.weight for c in self.criteria)
        return sum(scores[c.name] * c.weight for c in self.criteria) / total


@dataclass(frozen=True)
class Judgment:
    scores: dict[str, float]
    overall: float
    rationale: str


def rubric_from_mapping(name: str, data: Mapping[str, Any]) -> Rubric:
    """A rubric from its YAML form (packaged or inline in a suite); ValueError says what is wrong."""
    criteria = data.get("criteria")
    if not isinstance(criteria, list) or not criteria:
        raise ValueError(f"rubric '{name}': 'criteria' must be a non-empty list")
    parsed = []
    for position, entry in enumerate(criteria, start=1):
        if not isinstance(entry, Mapping) or not entry.get("name") or not entry.get("description"):
            raise ValueError(f"rubric '{name}': criterion {position} needs 'name' and 'description'")
        weight = float(entry.get("weight", 1.0))
        if weight <= 0:
            raise ValueError(f"rubric '{name}': criterion '{entry['name']}' needs a positive weight")
        parsed.append(Criterion(str(entry["name"]), str(entry.get("label") or entry["name"]), str(entry["description"]), weight))
    scale = data.get("scale", {"min": 1, "max": 10})
    low, high = int(scale.get("min", 1)), int(scale.get("max", 10))
    if low >= high:
        raise ValueError(f"rubric '{name}': scale min {low} must be below max {high}")
    return Rubric(name, str(data.get("description", "")), tuple(parsed), low, high)


@cache
def packaged_rubrics() -> dict[str, Rubric]:
    raw = yaml.safe_load(resources.files("vnllmtest").joinpath("rubrics.yaml").read_text("utf-8"))
    return {name: rubric_from_mapping(name, entry) for name, entry in raw.items()}


def judge_messages(rubric: Rubric, sections: Sequence[tuple[str, str]], *, strict: bool = False) -> list[Message]:
    """The judge's chat turns: the rubric and the JSON it must return, then the material to judge.
    `strict` adds a reminder, for the one retry after an unparsable reply."""
    # Placeholders, not numbers: a weak judge that copies the example must fail to parse, not score.
    example = ", ".join([f'"{c.name}": <{rubric.low}-{rubric.high}>' for c in rubric.criteria] + ['"ly_do": "<lý do>"'])
    criteria = "\n".join(f"- {c.name} ({c.label}): {c.description}" for c in rubric.criteria)
    system = (
        f"Bạn là giám khảo công tâm. {rubric.description}\n"
        f"Cho mỗi tiêu chí dưới đây một điểm nguyên từ {rubric.low} (rất kém) đến {rubric.high} (xuất sắc):\n"
        f"{criteria}\n"
        f"Chỉ trả về một đối tượng JSON có dạng {{{example}}}, "
        "trong đó ly_do là một hoặc hai câu giải thích ngắn bằng tiếng Việt."
    )
    body = "\n\n".join(f"### {title}\n{text}" for title, text in sections)
    if strict:
        keys = ", ".join(c.name for c in rubric.criteria)
        body += (
            f"\n\nLưu ý: câu trả lời trước không hợp lệ. Chỉ trả về đúng một đối tượng JSON có các khóa {keys} "
            f"(mỗi khóa một số nguyên từ {rubric.low} đến {rubric.high}) và ly_do, không viết gì thêm."
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def parse_judgment(text: str, rubric: Rubric) -> Judgment:
    """Scores for every criterion from a judge reply; JudgeParseError when any is missing or out of range."""
    found, rationale = _from_json(text, rubric)
    if len(found) < len(rubric.criteria):
        for key, number, scale in _labelled_numbers(text):
            name = _criterion_for(key, rubric)
            if name is not None:
                found.setdefault(name, _score(number, scale, rubric, key))
    if len(rubric.criteria) == 1 and not found:
        overall = re.search(rf"(?:điểm|score)\s*[:：=]?\s*{_NUMBER}", text, re.IGNORECASE)
        if overall:
            found[rubric.criteria[0].name] = _score(overall.group(1), overall.group(2), rubric, "điểm")
    missing = [c.name for c in rubric.criteria if c.name not in found]
    if missing:
        raise JudgeParseError(f"no score for {', '.join(missing)} in the judge's reply")
    scores = {c.name: found[c.name] for c in rubric.criteria}
    return Judgment(scores, rubric.overall(scores), rationale or _prose(text))


def _from_json(text: str, rubric: Rubric) -> tuple[dict[str, float], str]:
    """Scores and rationale from the first JSON object in the text that names a criterion."""
    decoder = json.JSONDecoder()
    for start in (match.start() for match in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        scores: dict[str, float] = {}
        rationale = ""
        for key, raw in value.items():
            name = _criterion_for(str(key), rubric)
            if name is not None:
                scores[name] = _json_score(raw, rubric, str(key))
            elif _normal(str(key)) in RATIONALE_KEYS and isinstance(raw, str):
                rationale = raw.strip()
        if scores:
            return scores, rationale
    return {}, ""


def _json_score(raw: Any, rubric: Rubric, key: str) -> float:
    if isinstance(raw, bool):
        raise JudgeParseError(f"'{key}': expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        return _score(str(raw), None, rubric, key)
    if isinstance(raw, str):
        match = re.match(rf"\s*{_NUMBER}", raw)
        if match:
            return _score(match.group(1), match.group(2), rubric, key)
    raise JudgeParseError(f"'{key}': expected a number from {rubric.low} to {rubric.high}, got {raw!r}")


def _score(number: str, scale: str | None, rubric: Rubric, key: str) -> float:
    value = float(number.replace(",", "."))
    if scale is not None and int(scale) != rubric.high:
        raise JudgeParseError(f"'{key}': scored {number}/{scale}, but the scale is {rubric.low}-{rubric.high}")
    if not rubric.low <= value <= rubric.high:
        raise JudgeParseError(f"'{key}': score {number} is outside {rubric.low}-{rubric.high}")
    return value


def _labelled_numbers(text: str) -> list[tuple[str, str, str | None]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in _LABELLED.finditer(text)]


def _criterion_for(key: str, rubric: Rubric) -> str | None:
    wanted = _normal(key)
    for criterion in rubric.criteria:
        if wanted in (_normal(criterion.name), _normal(criterion.label)):
            return criterion.name
    return None


def _normal(text: str) -> str:
    """Lowercase, without Vietnamese diacritics, punctuation or extra spaces: `Độ chính xác` -> `do chinh xac`."""
    stripped = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    stripped = stripped.replace("đ", "d").replace("Đ", "D").lower().replace("_", " ")
    return " ".join(re.sub(r"[^\w\s]", " ", stripped).split())


def _prose(text: str, limit: int = 1000) -> str:
    """The reply without JSON or code fences, as the rationale when the JSON has none."""
    prose = re.sub(r"```.*?```|\{.*?\}", " ", text, flags=re.DOTALL)
    return " ".join(prose.split())[:limit]
