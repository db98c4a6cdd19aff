"""The rest of the text path on any Unicode input (hypothesis): never an exception, always within bounds.
normalize_text, extract_choice and judge parsing have their own fuzzers in test_metrics_text.py,
test_metrics_choice.py and test_judge_parse.py."""

from __future__ import annotations

from functools import partial

from hypothesis import example, given
from hypothesis import strategies as st

from vnllmtest.budget import BudgetError, fit
from vnllmtest.metrics import exact_match, is_abstention, rouge_l, rouge_n, token_f1
from vnllmtest.prompts import render
from vnllmtest.prompt_spec import PromptBudget
from vnllmtest.thinking import CLOSE, OPEN, split_thinking

any_text = st.text(max_size=60)
# Text that looks like markup: template delimiters, think tags and whitespace among arbitrary characters.
markup = st.lists(
    st.one_of(st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", OPEN, CLOSE, " ", "\n"]), st.text(max_size=8)),
    max_size=12,
).map("".join)
texts = st.one_of(any_text, markup)


@given(texts, st.lists(texts, max_size=3))
def test_abstention_is_a_plain_yes_or_no_and_every_text_abstains_as_itself(text, phrases):
    assert is_abstention(text, phrases) in (True, False)
    assert is_abstention(text, [text])


@given(texts, st.lists(texts, max_size=3), st.lists(texts, max_size=2))
def test_reference_scores_stay_between_0_and_1(prediction, references, abstentions):
    for score in (exact_match, token_f1, rouge_l, partial(rouge_n, n=1), partial(rouge_n, n=2)):
        assert 0.0 <= score(prediction, references, abstentions=abstentions) <= 1.0


@given(texts)
def test_thinking_is_split_off_without_inventing_text(text):
    split = split_thinking(text)
    assert len(split.answer) + len(split.thinking or "") <= len(text)
    if OPEN not in text and CLOSE not in text:
        assert (split.answer, split.thinking, split.unterminated) == (text, None, False)
    assert not split.unterminated or OPEN in text


@given(texts)
def test_record_text_is_rendered_as_data_never_as_a_template(value):
    assert render("Hỏi: {{ question }}", {"question": value}) == f"Hỏi: {value}".strip()


@given(
    st.one_of(texts, st.lists(texts, min_size=1, max_size=4)),
    st.integers(min_value=0, max_value=80),
    st.integers(min_value=1, max_value=120),
    st.sampled_from(["head", "proportional"]),
)
@example(value=" ", overhead=2, limit=1, policy="proportional")  # a blank field: once a ZeroDivisionError
def test_a_budget_either_fits_the_prompt_with_prefixes_of_the_text_or_says_why_not(value, overhead, limit, policy):
    """The measure counts characters plus a fixed prompt overhead, as the replay backend does."""

    def measure(fields):
        passages = fields["context"]
        return overhead + sum(map(len, [passages] if isinstance(passages, str) else passages))

    budget = PromptBudget(max_tokens=limit, field="context", policy=policy)
    try:
        fields, truncation = fit({"context": value}, budget, measure)
    except BudgetError as error:
        assert overhead > limit and "even with 'context' empty" in str(error)
        return
    assert measure(fields) <= limit
    originals = [value] if isinstance(value, str) else value
    kept = [fields["context"]] if isinstance(value, str) else fields["context"]
    assert all(any(original.startswith(passage) for original in originals) for passage in kept)
    if truncation is not None:
        assert truncation.tokens_after <= limit < truncation.tokens_before
        assert 0 <= truncation.words_kept <= truncation.words_total
