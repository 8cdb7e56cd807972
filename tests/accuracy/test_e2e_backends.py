"""Real evalscope and lm-eval runs against the simulator answering from its answer key.

The simulator answers exactly round(accuracy × items) questions right per dataset, so every score
and verdict below is known in advance. About 10-15 s per run; run with
`pytest -m eval_backend tests/accuracy` in an environment with the extras installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pytest_deepseek.accuracy import BackendError, judge, read_results, run_backend
from pytest_deepseek.sim.answer_key import AnswerKeyContent

pytestmark = pytest.mark.eval_backend

ALL = ["cluewsc-dev", "cluewsc-test", "math_500", "mmlu"]
ACCURACY = "cluewsc-dev=0.75,cluewsc-test=0.7,math_500=0.8,mmlu=0.5"
GENERATION = {"max_tokens": 256, "retries": 0, "timeout_s": 60}


def needs(module: str, install: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} is not importable here; install with: {install}")


needs_evalscope = needs("evalscope", 'pip install "pytest-deepseek[evalscope]"')
needs_lm_eval = needs("lm_eval", 'pip install "pytest-deepseek[lm-eval]"')


def sim_url(preset: str = "fast", **content: str) -> str:
    return f"sim://{preset}?" + urlencode({"content": "answer_key", **{f"content_{k}": v for k, v in content.items()}})


def expected_percent(**content: str) -> dict[str, float]:
    options = {k: v for k, v in content.items() if k in ("accuracy", "seed", "fail")}
    return {d: 100.0 * e["right"] / e["n"] for d, e in AnswerKeyContent(**options).expected().items()}


def run_against_sim(tmp_path: Path, backend: str, datasets: list[str], api: str = "chat", preset: str = "fast",
                    **content: str):
    from pytest_deepseek.sim.launcher import start_sim

    with start_sim(sim_url(preset, **content), log_path=tmp_path / "sim.log") as sim:
        folder = run_backend(backend, base_url=sim.base_url, model=sim.model, api=api, datasets=datasets,
                             work_dir=tmp_path / "work", generation=GENERATION, timeout_s=300)
    return {r.dataset: r for r in read_results(folder)}


@needs_evalscope
@pytest.mark.parametrize(
    ("preset", "reasoning"),
    [
        ("fast", "lone-closing-tag"),
        ("fast", "think-pair"),
        ("fast", "reasoning_content"),
        ("fast", "none"),
        ("deepseek-r1", "lone-closing-tag"),  # the engine adds 32 reasoning tokens as reasoning_content
    ],
)
def test_evalscope_scores_exactly_in_every_reasoning_style(tmp_path: Path, preset: str, reasoning: str) -> None:
    datasets = ALL if (preset, reasoning) == ("fast", "lone-closing-tag") else ["cluewsc-test", "mmlu"]
    records = run_against_sim(tmp_path, "evalscope", datasets, preset=preset, accuracy=ACCURACY, reasoning=reasoning)
    expected = expected_percent(accuracy=ACCURACY)
    assert set(records) == set(datasets)
    for name in datasets:
        assert records[name].score == pytest.approx(expected[name], abs=0.01), name
        assert records[name].errored == 0 and not records[name].incomplete
    assert records["mmlu"].score == 50.0 and records["mmlu"].n == 8


@needs_evalscope
def test_evalscope_repeats_count_items_once(tmp_path: Path) -> None:
    from pytest_deepseek.sim.launcher import start_sim

    with start_sim(sim_url(accuracy="0.75"), log_path=tmp_path / "sim.log") as sim:
        folder = run_backend("evalscope", base_url=sim.base_url, model=sim.model, datasets=["mmlu"],
                             work_dir=tmp_path / "work", timeout_s=300,
                             generation={**GENERATION, "repeats": 2, "temperature": 0.6, "top_p": 0.95})
    (mmlu,) = read_results(folder)
    assert (mmlu.score, mmlu.n, mmlu.requested, mmlu.repeats) == (75.0, 8, 8, 2)
    assert sorted(i.score for i in mmlu.items) == [0.0, 0.0] + [1.0] * 6


@needs_evalscope
def test_evalscope_verdicts(tmp_path: Path) -> None:
    records = run_against_sim(tmp_path, "evalscope", ALL, accuracy=ACCURACY, reasoning="lone-closing-tag")
    entries = {
        "cluewsc-dev": ({"name": "cluewsc-dev", "min": 75.0}, "pass"),            # 6/8 = 75.00
        "cluewsc-test": ({"name": "cluewsc-test", "reference": 80.0, "tolerance": 5.0}, "fail"),  # 70 < 75
        "math_500": ({"name": "math_500", "reference": 85.0, "tolerance": 5.0}, "pass"),  # 80 >= 80
        "mmlu": ({"name": "mmlu", "min": 60.0}, "fail"),                           # 4/8 = 50
    }
    for name, (entry, verdict) in entries.items():
        check = judge(entry, records[name], expected_items=None)
        assert check.verdict == verdict, check.message
    assert judge({"name": "mmlu", "min": 10.0}, records["mmlu"], expected_items=10).verdict == "error"


@needs_evalscope
def test_evalscope_errored_item_is_an_error_though_its_score_is_higher(tmp_path: Path) -> None:
    records = run_against_sim(tmp_path, "evalscope", ["mmlu"], accuracy="0.75", reasoning="reasoning_content",
                              fail="mmlu/2")
    mmlu = records["mmlu"]
    honest = AnswerKeyContent(accuracy="0.75", fail="mmlu/2").expected()["mmlu"]
    assert honest["failed"] == ["mmlu/2"]
    assert (mmlu.errored, mmlu.incomplete, mmlu.n, mmlu.requested) == (1, True, 7, 8)
    assert mmlu.score == pytest.approx(100.0 * honest["right_not_failed"] / 7, abs=0.01)
    assert mmlu.score > 100.0 * honest["right_not_failed"] / 8
    check = judge({"name": "mmlu", "min": 50.0}, mmlu, expected_items=8)
    assert check.verdict == "error" and "errored" in check.message


@needs_lm_eval
@pytest.mark.parametrize(("api", "reasoning"), [("chat", "lone-closing-tag"), ("completions", "think-pair")])
def test_lm_eval_scores_exactly(tmp_path: Path, api: str, reasoning: str) -> None:
    records = run_against_sim(tmp_path, "lm-eval", ALL, api=api, accuracy=ACCURACY, reasoning=reasoning)
    expected = expected_percent(accuracy=ACCURACY)
    for name in ALL:
        assert records[name].score == pytest.approx(expected[name], abs=1e-6), name
        assert records[name].n == AnswerKeyContent().expected()[name]["n"]
        assert records[name].items is not None and len(records[name].items) == records[name].n
    check = judge({"name": "cluewsc-dev", "reference": 80.0, "tolerance": 5.0}, records["cluewsc-dev"],
                  expected_items=8)
    assert check.verdict == "pass" and "0.4 item(s) lower" in check.message


@needs_lm_eval
def test_lm_eval_failed_request_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="lm-eval exited with status"):
        run_against_sim(tmp_path, "lm-eval", ["mmlu"], accuracy="1", fail="mmlu/0")


def opencompass_python() -> str | None:
    """An interpreter with OpenCompass (env OPENCOMPASS_PYTHON), or None."""
    import os

    return os.environ.get("OPENCOMPASS_PYTHON") or None


@pytest.mark.skipif(
    opencompass_python() is None,
    reason="set OPENCOMPASS_PYTHON to a Python with opencompass==0.5.4 (its own venv, ~2 GB with CPU torch)",
)
def test_opencompass_scores_exactly_and_a_failed_set_is_an_error(tmp_path: Path) -> None:
    from pytest_deepseek.sim.launcher import start_sim

    # OpenCompass runs the sets in one inference task: a request failing after its retries aborts
    # the task, so every set after it prints '-' too. Fail the last MMLU item to keep the others.
    url = sim_url(accuracy=ACCURACY, reasoning="lone-closing-tag", fail="mmlu/7")
    with start_sim(url, log_path=tmp_path / "sim.log") as sim:
        folder = run_backend("opencompass", base_url=sim.base_url, model=sim.model, datasets=ALL,
                             work_dir=tmp_path / "work", generation=GENERATION,
                             opencompass_python=opencompass_python(), timeout_s=600)
    records = {r.dataset: r for r in read_results(folder)}
    expected = expected_percent(accuracy=ACCURACY)
    for name in ("cluewsc-dev", "cluewsc-test", "math_500"):
        assert records[name].score == pytest.approx(expected[name], abs=0.01), name
    assert (records["cluewsc-dev"].config_version, records["math_500"].config_version) == ("5ab83b", "11c4b5")
    assert judge({"name": "cluewsc-test", "reference": 80.0, "tolerance": 5.0}, records["cluewsc-test"],
                 expected_items=10).verdict == "fail"
    mmlu = records["mmlu"]
    assert mmlu.score is None and mmlu.incomplete
    check = judge({"name": "mmlu", "min": 0.0}, mmlu, expected_items=None)
    assert check.verdict == "error" and "lukaemon_mmlu_high_school_geography: its evaluation failed" in check.message
