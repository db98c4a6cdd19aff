"""Reading the chosen letter from realistic replies (our own, in the styles instruct models write).

Each row: the reply, the option labels the prompt listed, and what a reader should take from it:
a label, None (no answer can be read), or AMBIGUOUS (two or more different answers asserted).
"""

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnllmtest.metrics import ChoiceReading, extract_choice, read_choice

AMBIGUOUS = "ambiguous"
ABC = ["A", "B", "C"]
ABCD = ["A", "B", "C", "D"]
ABCDE = ["A", "B", "C", "D", "E"]

REPLIES = [
    # --- the bare answer, in every decoration
    ("B", ABCD, "B"),
    ("c", ABCD, "C"),
    ("d.", ABCD, "D"),
    ("**A**", ABCD, "A"),
    (" (C) ", ABCD, "C"),
    ("E", ABCDE, "E"),
    ("E", ABCD, None),
    ("D", ABC, None),
    # --- a letter opening the reply, with the option text quoted after it
    ("C. Hạ tỷ lệ dự trữ bắt buộc", ABCD, "C"),
    ("B) Sông Hồng", ABCD, "B"),
    ("**D. Cả A, B và C**", ABCD, "D"),
    ("A. Phương án B và C đều chưa đủ", ABCD, "A"),
    ("D. Câu A và câu B đúng", ABCD, "D"),
    ("C\n\nGiải thích: A sai vì thiếu dữ kiện, B sai vì nhầm đơn vị, D sai vì ngược chiều.", ABCD, "C"),
    # --- answer cues, Vietnamese
    ("Đáp án: B", ABCD, "B"),
    ("Đáp án là C.", ABCD, "C"),
    ("Đáp án B", ABCD, "B"),
    ("Đáp án (D)", ABCD, "D"),
    ("Đáp án chính xác là C", ABCD, "C"),
    ("Đáp án cuối cùng: B", ABCD, "B"),
    ("Phương án đúng nhất là D", ABCD, "D"),
    ("Câu trả lời đúng: (B)", ABCD, "B"),
    ("Chọn câu C.", ABCD, "C"),
    ("Em xin chọn phương án A ạ.", ABCD, "A"),
    ("Tôi nghĩ là B", ABCD, "B"),
    ("Có lẽ là D, vì hai vế còn lại mâu thuẫn nhau.", ABCD, "D"),
    ("đáp án: c", ABCD, "C"),
    ("ĐÁP ÁN: A", ABCD, "A"),
    ("Kết quả: D", ABCD, "D"),
    ("Chốt đáp án: E", ABCDE, "E"),
    ("Lựa chọn phù hợp nhất: B", ABC, "B"),
    # --- markdown and chatty instruct styles
    ("**Đáp án: B**", ABCD, "B"),
    ("**Đáp án:** C\n\n**Giải thích:** Khi ngân hàng trung ương cho vay, lượng tiền cơ sở tăng.", ABCD, "C"),
    ("### Đáp án\n\n**A**", ABCD, "A"),
    ("Chào bạn! Câu này khá thú vị 😊\n\nĐáp án đúng là **B. Cho các ngân hàng thương mại vay**.", ABCD, "B"),
    (
        "Dựa trên kiến thức kinh tế vĩ mô, câu trả lời là **D**.\n\n- A: làm giảm tiền cơ sở\n- B: không liên quan",
        ABCD,
        "D",
    ),
    ("> Đáp án: **C**\n\nHy vọng giải thích trên hữu ích cho bạn!", ABCD, "C"),
    ("| Phương án | Nhận xét |\n|---|---|\n| A | sai |\n| B | sai |\n\n**=> Chọn C**", ABCD, "C"),
    # --- explanations that mention other letters after the answer
    ("Đáp án: B. Phương án A sai vì lãi suất chiết khấu tăng làm giảm cho vay.", ABCD, "B"),
    ("Đáp án là C. Các phương án A, B, D đều không đúng.", ABCD, "C"),
    ("Đáp án: D\nGiải thích:\n- A sai: thiếu điều kiện\n- B sai: nhầm khái niệm\n- C sai: ngược lại", ABCD, "D"),
    ("Câu trả lời: A. Tuy phương án C nghe hợp lý nhưng nó chỉ đúng trong ngắn hạn.", ABCD, "A"),
    ("Đáp án: D. Cả A, B và C đều đúng", ABCD, "D"),
    ("Đáp án: B\n\nVitamin A và vitamin C không liên quan đến câu hỏi này.", ABCD, "B"),
    # --- the options repeated before the answer
    ("A. Hà Nội\nB. Huế\nC. Đà Nẵng\nD. Sài Gòn\n\nĐáp án: A", ABCD, "A"),
    ("Các phương án:\nA. 1945\nB. 1954\nC. 1975\nD. 1986\nĐáp án đúng là C", ABCD, "C"),
    ("A) Đồng nội tệ xuống giá\nB) Đầu tư nước ngoài tăng\nC) Phương án A và B\n\nVậy chọn C.", ABC, "C"),
    ("A. Bán ngoại tệ\nB. Cho vay\nC. Hạ dự trữ\nD. Tăng lãi suất", ABCD, None),
    # --- verdicts per option, on the option's line or after its letter
    ("A. Hà Nội - đúng\nB. Huế - sai\nC. Đà Nẵng - sai", ABC, "A"),
    ("- A → Sai\n- B → Đúng\n- C → Sai\n- D → Sai", ABCD, "B"),
    ("* **A**: Bán ngoại tệ (sai)\n* **B**: Cho vay (đúng)\n* **C**: Hạ dự trữ (sai)", ABC, "B"),
    ("A. Cả B và C đều đúng → Đúng\nB. Chỉ B → Sai\nC. Chỉ C → Sai", ABC, "A"),
    ("Answer: (A) is wrong, (B) is right.", ABCD, "B"),
    ("B là câu trả lời đúng.", ABCD, "B"),
    ("Chỉ có phương án C là phương án đúng.", ABCD, "C"),
    ("C is correct. D is correct too.", ABCD, AMBIGUOUS),
    # --- the options listed under a heading are no answer
    ("Đáp án\nA. Hà Nội\nB. Huế", ABCD, None),
    ("Tóm lại\nA. Tăng\nB. Giảm", ABCD, None),
    ("A. x\nB. y\nC. z\nD. w\n\nĐáp án:\nC. z", ABCD, "C"),
    # --- a final-answer marker overrides earlier letters
    ("Ban đầu tôi nghĩ là A, nhưng xét kỹ lại thì vậy đáp án là C.", ABCD, "C"),
    ("Đáp án: A. Khoan đã, đọc lại đề thì đáp án đúng là D.", ABCD, "D"),
    ("Tôi nghĩ là B. Nhưng B chỉ đúng một phần. Cuối cùng, tôi chọn D.", ABCD, "D"),
    ("A có vẻ đúng, B cũng hợp lý. Tóm lại: B", ABCD, "B"),
    ("Phân tích: C làm tăng cung tiền.\n=> C", ABCD, "C"),
    ("Xét phương án A: sai.\nXét phương án B: sai.\nDo đó, câu trả lời là D.", ABCD, "D"),
    ("Kết luận: đáp án E.", ABCDE, "E"),
    ("Chọn A... à không, chọn B mới đúng.", ABCD, "B"),
    ("Nhiều bạn dễ nhầm chọn A, nhưng đáp án đúng là C.", ABCD, "C"),
    ("Đề hỏi phát biểu SAI. Phát biểu C sai, nên chọn C.", ABCD, "C"),
    ("Chọn A (sai), chọn C (đúng).", ABCD, "C"),
    # --- negations never count
    ("Đáp án D sai, đáp án đúng là B", ABCD, "B"),
    ("A sai, B sai, C đúng", ABCD, "C"),
    ("Tôi không chọn A, tôi chọn C", ABCD, "C"),
    ("Loại A vì sai niên đại, loại B vì sai địa danh, chọn D.", ABCD, "D"),
    ("Đáp án không phải là A.", ABCD, None),
    ("- A: ❌\n- B: ✅\n- C: ❌\n- D: ❌", ABCD, "B"),
    ("A. Sai\nB. Sai\nC. Đúng\nD. Sai", ABCD, "C"),
    ("Phương án A bị loại. Phương án C là đúng.", ABCD, "C"),
    ("A, B và C đều sai.", ABCD, None),
    # --- hedges and two answers without a marker are ambiguous
    ("C hoặc D", ABCD, AMBIGUOUS),
    ("Đáp án: D, A", ABCD, AMBIGUOUS),
    ("Đáp án có thể là B hoặc C", ABCD, None),  # "có thể" (maybe) is no answer cue
    ("Tôi nghĩ là B hoặc C, khó chọn quá.", ABCD, AMBIGUOUS),
    ("Đáp án: A\n\nĐáp án: C", ABCD, AMBIGUOUS),
    ("Đáp án là B. Câu trả lời: D", ABCD, AMBIGUOUS),
    ("Vậy đáp án là A hoặc C.", ABCD, AMBIGUOUS),
    ("Đáp án đúng là B. Tuy nhiên câu trả lời: D", ABCD, AMBIGUOUS),
    ("Answer: A or B", ABCD, AMBIGUOUS),
    # --- no answer at all: None, not ambiguous
    ("Xin lỗi, tôi không chắc về câu này.", ABCD, None),
    ("Câu hỏi này thuộc chủ đề kinh tế vĩ mô.", ABCD, None),
    ("An Giang là tỉnh có diện tích trồng lúa lớn.", ABCD, None),
    ("Bộ Công An ban hành thông tư này.", ABCD, None),
    ("Vitamin A giúp sáng mắt, vitamin D giúp chắc xương.", ABCD, None),
    ("Đây là một câu hỏi hay, à mà cũng khó.", ABCD, None),
    ("a ha, câu này dễ mà", ABCD, None),
    ("Ảnh hưởng của Đổi Mới rất rõ. Ba yếu tố chính là vốn, lao động và công nghệ.", ABCD, None),
    ("So sánh (A) với (B) thì (A) ổn hơn một chút nhưng (B) an toàn hơn.", ABCD, None),
    ("Hãy chọn đáp án đúng cho câu hỏi trắc nghiệm sau.", ABCD, None),
    # --- thinking-like prose
    (
        "Hmm, câu hỏi hỏi về cơ sở tiền tệ. Bán ngoại tệ thì thu tiền về, làm giảm. Cho vay thì bơm tiền ra, "
        "làm tăng. Hạ dự trữ bắt buộc không đổi cơ sở tiền. Vậy đáp án là B.",
        ABCD,
        "B",
    ),
    (
        "Mình cùng xét nhé. Phương án A nói về thuế, không liên quan. Phương án C là chi tiêu chính phủ... "
        "Hmm, có lẽ là C. Đúng rồi, đáp án là C.",
        ABCD,
        "C",
    ),
    (
        "Để trả lời câu hỏi này, cần nhớ năm 1945. Vì vậy, sau khi đối chiếu các mốc, đáp án phù hợp nhất là A.",
        ABCD,
        "A",
    ),
    # --- English and mixed replies
    ("The answer is C.", ABCD, "C"),
    ("Final answer: D", ABCD, "D"),
    ("I think the correct option is B because inflation rises.", ABCD, "B"),
    ("Option A is incorrect. Option B is correct.", ABCD, "B"),
    ("Answer: A\nExplanation: B and C describe short-run effects only.", ABCD, "A"),
    ("Let me think. A is wrong, D is wrong. So the answer is B.", ABCD, "B"),
    ("The answer is a bit tricky, but I'd say C.", ABCD, "C"),
    ("I think a good answer would be B", ABCD, "B"),
    ("I'll go with E.", ABCDE, "E"),
    ("Đáp án: B (vì the central bank lends money).", ABCD, "B"),
    ("This is a question about history.", ABCD, None),
    # --- 3 and 5 options
    ("Đáp án: C", ABC, "C"),
    ("Đáp án: E. Các phương án còn lại đều sai.", ABCDE, "E"),
    ("Phương án E sai. Đáp án đúng là D.", ABCDE, "D"),
    ("Đáp án: E", ABC, None),
    # --- "X mới đúng" ("X is the one that is right") affirms X
    ("A chưa đúng, B mới đúng.", ABCD, "B"),
    ("Sau khi xét lại, C mới là đáp án đúng.", ABCD, "C"),
    ("Đáp án là A.\nNhưng thật ra B mới đúng.", ABCD, AMBIGUOUS),
    # --- an option noun followed by its option text refers to the option, unless affirmed or alone
    ("Đáp án: B (Huế). Phương án A (Hà Nội) là thủ đô hiện nay, không phải cố đô.", ABCD, "B"),
    ("Phương án A: 5\nPhương án B: 7\nĐáp án: B", ABCD, "B"),
    ("Câu trả lời: C. Lựa chọn A (1945) là năm khác.", ABCD, "C"),
    ("Đáp án là D. Option A (red) is a distractor.", ABCD, "D"),
    ("Phương án B đúng. Phương án A (Hà Nội) là thủ đô.", ABCD, "B"),
    ("Phương án B (Huế) là đáp án đúng. Phương án A (Hà Nội) thì không.", ABCD, "B"),
    ("Chọn phương án B (Huế). Phương án A (Hà Nội) là thủ đô.", ABCD, "B"),
    ("Vậy phương án C (1954).", ABCD, "C"),
    ("Phương án B (Huế).", ABCD, "B"),
    ("Phương án: B", ABCD, "B"),
    ("Phương án A: 5\nPhương án B: 7", ABCD, AMBIGUOUS),
    ("Đáp án: A (Hà Nội). Tuy nhiên câu trả lời: D", ABCD, AMBIGUOUS),
]


def expected_reading(expected):
    if expected == AMBIGUOUS:
        return ChoiceReading(None, ambiguous=True)
    return ChoiceReading(expected, ambiguous=False)


@pytest.mark.parametrize(("reply", "labels", "expected"), REPLIES, ids=[r[0][:40] for r in REPLIES])
def test_reply(reply, labels, expected):
    assert read_choice(reply, labels) == expected_reading(expected)
    assert extract_choice(reply, labels) == (None if expected == AMBIGUOUS else expected)


@pytest.mark.parametrize(("reply", "labels", "expected"), REPLIES[::7])
def test_decomposed_text_reads_the_same(reply, labels, expected):
    assert read_choice(unicodedata.normalize("NFD", reply), labels) == expected_reading(expected)


def test_enough_realistic_replies():
    assert len(REPLIES) >= 60
    assert {expected for _, _, expected in REPLIES} >= {"A", "B", "C", "D", "E", None, AMBIGUOUS}


def test_labels_are_returned_as_the_caller_spells_them():
    assert read_choice("đáp án: b", ["a", "b", "c"]) == ChoiceReading("b")
    assert read_choice("Chọn 3 vì hai đáp án kia sai.", ["1", "2", "3", "4"]) == ChoiceReading("3")
    assert read_choice("Đáp án: 1 hoặc 3", ["1", "2", "3", "4"]) == ChoiceReading(None, ambiguous=True)


def test_reading_is_fast_on_long_replies():
    reply = ("Phương án A nói về thuế, còn phương án B nói về chi tiêu. " * 150) + "Vậy đáp án là B."
    began = time.perf_counter()
    for _ in range(20):
        assert extract_choice(reply, ABCD) == "B"
    assert (time.perf_counter() - began) / 20 < 0.1  # seconds per reply of ~9,000 characters


REPLY_WORDS = (
    "Đáp án : đúng là chọn A B C D E a c ( ) ** sai không vậy => hoặc , . \n - → ✅ câu trả lời the answer is "
    "Vitamin An Đ loại cuối cùng"
).split(" ")


@given(st.lists(st.sampled_from(REPLY_WORDS), max_size=30), st.sampled_from([ABC, ABCD, ABCDE]))
def test_a_reading_is_a_label_or_nothing(words, labels):
    reading = read_choice(" ".join(words), labels)
    assert reading.label in [*labels, None]
    assert not (reading.ambiguous and reading.label is not None)


# Lowercase prose without a final-answer marker ("vậy", "do đó", "tóm lại"): a marker followed by a filler
# ("vậy thì a") is a cue, and a lowercase letter after a cue is an answer (tested below).
PROSE_WORDS = "a à ạ á anh ba bà cá có đi được và là này kia thì cũng rất hay ơi nhé ạ mà do".split()


@pytest.mark.parametrize(
    ("reply", "label"), [("vậy thì c", "C"), ("do đó là b", "B"), ("tóm lại thì d", "D"), ("à vậy thì a", "A")]
)
def test_a_marker_with_a_filler_is_a_cue_even_for_a_lowercase_letter(reply, label):
    assert read_choice(reply, ABCD) == ChoiceReading(label)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(PROSE_WORDS), min_size=2, max_size=20), st.sampled_from([" ", ", ", ". ", "\n"]))
def test_lowercase_prose_is_no_answer(words, separator):
    assert read_choice(separator.join(words), ABCD) == ChoiceReading(None)
