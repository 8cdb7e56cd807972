"""Dataset names across backends, thinking removal, generation settings."""

from __future__ import annotations

import pytest

from pytest_deepseek.accuracy import R1_RECIPE, GenerationError, generation_settings, names
from pytest_deepseek.accuracy.reasoning import strip_thinking


@pytest.mark.parametrize(
    ("name", "evalscope", "opencompass", "lm_eval"),
    [
        ("cluewsc-dev", ("general_mcq", "cluewsc_dev"), "cluewsc-dev", "deepseek_cluewsc_dev"),
        ("cluewsc-test", ("general_mcq", "cluewsc_test"), "cluewsc-test", "deepseek_cluewsc_test"),
        ("math_500", ("math_500", None), "math-500", "deepseek_math_500"),
        ("mmlu", ("mmlu", None), "mmlu", "deepseek_mmlu"),
        ("gsm8k", ("gsm8k", None), "gsm8k", "gsm8k"),
    ],
)
def test_names_round_trip(name: str, evalscope: tuple, opencompass: str, lm_eval: str) -> None:
    target = names.to_evalscope(name)
    assert (target.benchmark, target.subset) == evalscope
    assert names.from_evalscope(target.benchmark, target.subset) == name
    assert names.to_opencompass(name) == opencompass and names.from_opencompass(opencompass) == name
    assert names.to_lm_eval(name) == lm_eval and names.from_lm_eval(lm_eval) == name


def test_every_mmlu_subject_is_mmlu() -> None:
    assert names.from_opencompass("lukaemon_mmlu_astronomy") == "mmlu"
    assert names.from_evalscope("general_mcq", "my_subset") == "my_subset"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("<think>ANSWER: C</think>ANSWER: B", "ANSWER: B"),
        ("Let me think. ANSWER: C</think>\nANSWER: B", "ANSWER: B"),
        ("<think>a</think>x<think>b</think>y", "xy"),
        ("ANSWER: B", "ANSWER: B"),
    ],
)
def test_strip_thinking(text: str, answer: str) -> None:
    assert strip_thinking(text) == answer


def test_generation_defaults_leave_backend_defaults() -> None:
    settings = generation_settings(None)
    assert settings.temperature is None and settings.repeats == 1 and settings.concurrency == 8


def test_r1_recipe() -> None:
    assert (R1_RECIPE.temperature, R1_RECIPE.top_p, R1_RECIPE.max_tokens) == (0.6, 0.95, 32768)
    assert R1_RECIPE.repeats > 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temprature": 0.6}, "unknown generation setting"),
        ({"temperature": "hot"}, "must be a number"),
        ({"top_p": 1.5}, r"must be in \[0.0, 1.0\]"),
        ({"repeats": 0}, "must be >= 1"),
        ({"max_tokens": 1.5}, "must be an integer"),
    ],
)
def test_generation_rejects_bad_values(values: dict, message: str) -> None:
    with pytest.raises(GenerationError, match=message):
        generation_settings(values)
