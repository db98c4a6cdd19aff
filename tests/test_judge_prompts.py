"""Golden files of the prompts the seed suites' judges get: the published rubrics and the criteria
alternatives, a chat judge's first and strict attempts, and a primed base-model judge.

The prompts are rendered through the real path (suite file, dataset adapter, section budgets,
judge_all) with a scripted judge that counts characters as its tokens, so the section cuts are
visible. After a deliberate change to a prompt, regenerate and review the diff:

    VNLLMTEST_UPDATE_GOLDEN=1 pytest tests/test_judge_prompts.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import ScriptedJudge
from vnllmtest.evaluation import ScoreJob
from vnllmtest.judging import judge_all
from vnllmtest.loaders import vims, vtsnlp
from vnllmtest.loaders.base import RawRecord
from vnllmtest.runner import Runner
from vnllmtest.suite import load_suite

GOLDEN = Path(__file__).parent / "golden" / "judge" / "prompts"
SUITES = Path(__file__).resolve().parents[1] / "suites"
UPDATE = os.environ.get("VNLLMTEST_UPDATE_GOLDEN") == "1"

CLUSTER = {
    "id": "cum_mua_lu",
    "documents": [
        {
            "title": "Mưa lớn gây ngập tại thị trấn ven sông",
            "content": (
                "Từ chiều thứ Hai, mưa lớn kéo dài hơn mười giờ khiến nước sông dâng nhanh. Nhiều khu dân cư ở "
                "thị trấn ven sông bị ngập sâu từ 0,5 đến 1 mét, hàng trăm hộ phải di dời đồ đạc lên gác. Chính "
                "quyền địa phương huy động lực lượng dân quân và thanh niên tình nguyện hỗ trợ người già, trẻ "
                "nhỏ đến nơi an toàn."
            ),
        },
        {
            "title": "Hơn 300 hộ dân được sơ tán trong đêm",
            "content": (
                "Đến rạng sáng thứ Ba, hơn 300 hộ dân đã được sơ tán đến trường học và nhà văn hóa. Ban chỉ huy "
                "phòng chống thiên tai cho biết mực nước đã bắt đầu rút nhưng vẫn cảnh báo nguy cơ sạt lở ở các "
                "xã miền núi lân cận. Một số tuyến đường liên xã vẫn bị chia cắt."
            ),
        },
        {
            "content": (
                "Ngành giáo dục cho học sinh nghỉ học hai ngày. Điện lực tỉnh tạm ngắt điện ở những khu vực ngập "
                "để bảo đảm an toàn và dự kiến cấp điện trở lại khi nước rút hẳn."
            ),
        },
    ],
    "summaries": [
        "Mưa lớn kéo dài từ chiều thứ Hai làm nhiều khu dân cư ở thị trấn ven sông ngập sâu tới 1 mét. Hơn 300 "
        "hộ dân được sơ tán trong đêm đến trường học và nhà văn hóa; học sinh nghỉ học hai ngày, điện bị ngắt "
        "ở vùng ngập và nguy cơ sạt lở vẫn còn ở các xã miền núi."
    ],
    "selected_sentences": ["Mưa lớn kéo dài hơn mười giờ khiến nước sông dâng nhanh.", "Hơn 300 hộ dân đã được sơ tán."],
}
INSTRUCTION = {
    "category": "viết",
    "instruct": "Viết một đoạn văn ngắn khuyên học sinh cách ôn thi hiệu quả.",
    "input": "Đối tượng: học sinh lớp 12, còn một tháng nữa là thi tốt nghiệp.",
    "output": (
        "Còn một tháng, em hãy chia thời gian theo từng môn, ưu tiên phần kiến thức còn yếu. Mỗi ngày làm "
        "một đề thử trong đúng thời gian quy định, sau đó tự chấm và ghi lại lỗi sai. Ngủ đủ bảy tiếng, ăn "
        "uống điều độ và nghỉ ngắn sau mỗi giờ học để giữ sức đến ngày thi."
    ),
}
CANDIDATES = {
    "vims": "Mưa lớn làm ngập thị trấn ven sông, hơn 300 hộ dân phải sơ tán. Học sinh được nghỉ học hai ngày.",
    "vtsnlp": "Em nên lập thời gian biểu, làm đề thử mỗi ngày và ngủ đủ giấc để giữ sức khỏe.",
}
CASES = [
    ("vims", "vims_published", "chat"),
    ("vims", "vims_published", "chat_retry"),
    ("vims", "vims_published", "primed"),
    ("vims", "summary_quality", "chat"),
    ("vtsnlp", "vtsnlp_published", "chat"),
    ("vtsnlp", "vtsnlp_published", "chat_retry"),
    ("vtsnlp", "vtsnlp_published", "primed"),
    ("vtsnlp", "answer_quality", "chat"),
]


def rendered(tmp_path: Path, suite_name: str, rubric: str, judge_kind: str) -> str:
    """The judge's request for our own item of the seed suite, with the rubric swapped in as a user would."""
    text = (SUITES / f"{suite_name}.yaml").read_text(encoding="utf-8")
    default = load_suite(SUITES / f"{suite_name}.yaml").spec.judge.rubric
    (tmp_path / f"{suite_name}.yaml").write_text(text.replace(f"rubric: {default}", f"rubric: {rubric}"), encoding="utf-8")
    suite = load_suite(tmp_path / f"{suite_name}.yaml")
    assert suite.spec.judge.rubric == rubric
    if suite_name == "vims":
        item = vims.to_item(RawRecord("ours", CLUSTER), suite.spec.dataset.options)
    else:
        item = vtsnlp.to_item(RawRecord("ours", INSTRUCTION), {})
    judge = ScriptedJudge([("Không chấm được.", "stop")] * 2, plain=judge_kind == "primed")
    [verdict] = judge_all(judge, [ScoreJob(suite, item, "ung_vien", CANDIDATES[suite_name])], Runner())
    request = judge.requests[1 if judge_kind == "chat_retry" else 0]
    cuts = "; ".join(f"{c['section']} {c['tokens_before']} -> {c['tokens_after']}" for c in verdict.truncated_sections)
    header = [
        f"# Judge prompt: suite {suite_name}, rubric {rubric}, {judge_kind} judge.",
        f"# Request: max_new_tokens={request.max_new_tokens} stop={list(request.stop)}; this test judge counts characters as tokens.",
        f"# Sections cut to their budget: {cuts or 'none'}",
    ]
    return "\n".join(header) + "\n" + "=" * 40 + "\n" + request.prompt + "\n"


@pytest.mark.parametrize(("suite_name", "rubric", "judge_kind"), CASES)
def test_rendered_judge_prompt_matches_its_golden_file(tmp_path, suite_name, rubric, judge_kind):
    path = GOLDEN / f"{suite_name}__{rubric}__{judge_kind}.txt"
    text = rendered(tmp_path, suite_name, rubric, judge_kind)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with VNLLMTEST_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: review, then VNLLMTEST_UPDATE_GOLDEN=1"


def test_every_golden_prompt_file_belongs_to_a_case():
    expected = {f"{suite}__{rubric}__{kind}.txt" for suite, rubric, kind in CASES}
    assert {path.name for path in GOLDEN.glob("*.txt")} == expected


def test_the_published_sections_are_shown_and_the_context_is_cut_in_tokens(tmp_path):
    text = rendered(tmp_path, "vims", "vims_published", "chat")
    assert "### Các bài báo\nBài 1: Mưa lớn gây ngập tại thị trấn ven sông\nTừ chiều thứ Hai" in text
    assert "### Bản tóm tắt tham khảo\nMưa lớn kéo dài" in text
    assert f"### Bản tóm tắt cần chấm\n{CANDIDATES['vims']}" in text  # the candidate whole
    assert "Các bài báo" in text.splitlines()[2] and "Bản tóm tắt tham khảo" in text.splitlines()[2]
    assert "Điện lực tỉnh" not in text  # the third article lies past the 600-token budget
    answer = rendered(tmp_path, "vtsnlp", "vtsnlp_published", "chat")
    assert f"### Yêu cầu\n{INSTRUCTION['instruct']}\n\n{INSTRUCTION['input']}" in answer
    assert f"### Câu trả lời cần chấm\n{CANDIDATES['vtsnlp']}" in answer
