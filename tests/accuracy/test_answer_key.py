"""The simulator's answer-key content: matching prompts, exact accuracy, formats, reasoning styles, failures."""

from __future__ import annotations

import random

import pytest

from pytest_deepseek.accuracy.bundled import cluewsc_question, load_items
from pytest_deepseek.accuracy.reasoning import strip_thinking
from pytest_deepseek.sim.answer_key import AnswerKeyContent, parse_accuracy, pieces

MMLU_Q = "Answer the following ...\n\nWhat is 9 times 6?\n\nA) 54\nB) 56\nC) 45\nD) 63"


def ask(content: AnswerKeyContent, text: str, *, chat: bool = True, max_tokens: int = 512, **kw):
    messages = [{"role": "user", "content": text}] if chat else None
    return content.generate(prompt_text="" if chat else text, messages=messages, max_tokens=max_tokens,
                            min_tokens=kw.get("min_tokens", 0), ignore_eos=kw.get("ignore_eos", False),
                            rng=random.Random(0))


def test_exact_share_right_per_dataset() -> None:
    content = AnswerKeyContent(accuracy="0.7")
    expected = content.expected()
    assert {d: (e["right"], e["n"]) for d, e in expected.items()} == {
        "cluewsc-dev": (6, 8), "cluewsc-test": (7, 10), "math_500": (7, 10), "mmlu": (6, 8)}


def test_every_bundled_question_is_matched_and_answered_as_planned() -> None:
    content = AnswerKeyContent(accuracy="cluewsc-test=0.5,*=0.25", seed="3")
    right = 0
    for i, item in enumerate(load_items("cluewsc-test")):
        gen = ask(content, cluewsc_question(item))
        text = "".join(gen.answer)
        truth = "A" if item["label"] else "B"
        assert text in ("答案：A", "答案：B")
        right += text == f"答案：{truth}"
        assert content.match(cluewsc_question(item)).id == f"cluewsc-test/{i}"
    assert right == 5
    assert content.expected()["mmlu"]["right"] == 2


def test_formats_per_dataset() -> None:
    content = AnswerKeyContent()
    assert "".join(ask(content, MMLU_Q).answer) == "ANSWER: A"
    math = "What is $\\sqrt{81}$?\nPlease reason step by step, and put your final answer within \\boxed{}."
    assert "".join(ask(content, math, chat=False).answer) == "The answer is $\\boxed{9}$."


def test_latest_question_wins_over_few_shot_examples() -> None:
    content = AnswerKeyContent()
    prompt = "Which planet is closest to the Sun?\nANSWER: B\n\nWhat is 9 times 6?\n"
    assert content.match(prompt).id == "mmlu/2"


@pytest.mark.parametrize("style", ["none", "think-pair", "lone-closing-tag", "reasoning_content"])
def test_reasoning_styles_hide_a_decoy_the_scorer_must_not_read(style: str) -> None:
    content = AnswerKeyContent(reasoning=style)
    gen = ask(content, MMLU_Q)
    text = "".join(gen.answer)
    assert strip_thinking(text) == "ANSWER: A"
    if style == "think-pair":
        assert gen.answer[0] == "<think>" and "</think>" in gen.answer and "ANSWER: B" in text
    if style == "lone-closing-tag":
        assert "<think>" not in text and "</think>" in gen.answer and text.index("ANSWER: B") < text.index("</think>")
    if style == "reasoning_content":
        assert text == "ANSWER: A" and "ANSWER: B" in "".join(gen.reasoning)
    if style == "none":
        assert gen.reasoning == [] and text == "ANSWER: A"


def test_chosen_items_fail_with_http_status() -> None:
    content = AnswerKeyContent(fail="mmlu/2", fail_status="503")
    gen = ask(content, MMLU_Q)
    assert gen.fail_status == 503 and gen.answer == []
    assert content.expected()["mmlu"]["failed"] == ["mmlu/2"]


def test_unmatched_prompt_gets_a_visible_non_answer() -> None:
    gen = ask(AnswerKeyContent(), "What is the airspeed of an unladen swallow?")
    assert "not in the answer key" in "".join(gen.answer) and gen.fail_status is None


def test_min_tokens_pad_with_newlines() -> None:
    gen = ask(AnswerKeyContent(), MMLU_Q, min_tokens=20)
    assert len(gen.answer) == 20 and "".join(gen.answer).strip() == "ANSWER: A"


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="reasoning"):
        AnswerKeyContent(reasoning="loud")
    with pytest.raises(ValueError, match="not in the key"):
        AnswerKeyContent(fail="mmlu/99")
    with pytest.raises(ValueError, match="within 0..1"):
        parse_accuracy("1.5")


def test_pieces_keep_tags_whole() -> None:
    assert pieces("x</think>ANSWER: B") == ["x", "</think>", "ANSWER", ":", " B"]
