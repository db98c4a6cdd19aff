"""LLM-as-judge: the prompt a judge model gets, and the public judge API.

A rubric (`vnllmtest.rubrics`) asks for a holistic score, per-criterion scores, or both, each a whole
number on the rubric's scale, returned as one JSON object with a short rationale (`ly_do`). Replies are
read by `parse_judgment` (`vnllmtest.judge_parse`).
"""

from __future__ import annotations

from collections.abc import Sequence

from vnllmtest.judge_parse import parse_judgment
from vnllmtest.messages import Message
from vnllmtest.rubrics import Criterion, JudgeParseError, Judgment, Rubric, packaged_rubrics, rubric_from_mapping

RATIONALE_KEY = "ly_do"

__all__ = [
    "Criterion",
    "JudgeParseError",
    "Judgment",
    "Rubric",
    "judge_messages",
    "packaged_rubrics",
    "parse_judgment",
    "primer",
    "rubric_from_mapping",
]


def judge_messages(rubric: Rubric, sections: Sequence[tuple[str, str]], *, strict: bool = False) -> list[Message]:
    """The judge's chat turns: the rubric and the JSON it must return, then the material to judge.
    `strict` adds a reminder, for the one retry after an unreadable reply."""
    scale = f"<{rubric.low}-{rubric.high}>"  # placeholders, not numbers: a judge that copies the shape gives no score
    shape = ", ".join([f'"{c.name}": {scale}' for c in rubric.scored] + [f'"{RATIONALE_KEY}": "<lý do>"'])
    lines = [
        f"Bạn là một giám khảo công tâm và cẩn thận. {rubric.description}".strip(),
        f"Mọi điểm là một số nguyên từ {rubric.low} (rất kém) đến {rubric.high} (xuất sắc).",
    ]
    if rubric.holistic:
        lines.append(f"Điểm tổng thể ({rubric.holistic.name}): {rubric.holistic.description}")
    if rubric.criteria:
        lines.append("Chấm riêng từng tiêu chí sau:")
        lines += [f"- {c.name} ({c.label}): {c.description}" for c in rubric.criteria]
    lines.append(
        f"Chỉ trả về một đối tượng JSON có dạng {{{shape}}}, trong đó {RATIONALE_KEY} là một hoặc hai câu "
        "giải thích ngắn bằng tiếng Việt. Không viết gì ngoài đối tượng JSON đó."
    )
    body = "\n\n".join(f"### {title}\n{text}" for title, text in sections)
    if strict:
        keys = ", ".join(c.name for c in rubric.scored)
        body += (
            f"\n\nLưu ý: câu trả lời trước không đọc được. Chỉ trả về đúng một đối tượng JSON có các khóa {keys} "
            f"(mỗi khóa một số nguyên từ {rubric.low} đến {rubric.high}) và {RATIONALE_KEY}, không viết gì thêm."
        )
    return [{"role": "system", "content": "\n".join(lines)}, {"role": "user", "content": body}]


def primer(rubric: Rubric) -> str:
    """The start of the JSON a model that continues plain text (a base model) is given to continue."""
    return f'{{"{rubric.scored[0].name}": '
