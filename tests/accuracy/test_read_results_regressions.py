"""Result folders that fuzzing (tests/fuzz/test_results_readers_fuzz.py) found the readers crashing on.

Each is a real run copied and broken in one place; reading it is a `ResultsError` naming the file
(and the line of a JSON-lines file) and the field, or records that say what is wrong.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.accuracy import ResultsError, read_results

EVALSCOPE_REPORT = "reports/mock-model/math_500.json"
EVALSCOPE_REVIEW = "reviews/mock-model/math_500_Level 1.jsonl"
LM_EVAL_RESULTS = "mock-model/results_2026-11-23T09-43-53.062577.json"
LM_EVAL_SAMPLES = "mock-model/samples_tiny_mmlu_gen_2026-11-23T09-43-53.062577.jsonl"
OC_RUN = "20261123_094123"
OC_SUMMARY = f"{OC_RUN}/summary/summary_20261123_094256.csv"
OC_DETAILS = f"{OC_RUN}/results/mock-deepseek/cluewsc-dev.json"


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def edit_first_row(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = json.dumps(change(json.loads(lines[0])))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def put(obj: dict[str, Any], keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    target = obj
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return obj


def copy_run(results_dir: Path, tmp_path: Path, run: str) -> Path:
    return Path(shutil.copytree(results_dir / run, tmp_path / run))


@pytest.mark.parametrize(
    ("run", "rel", "change", "expected"),
    [
        # AttributeError / TypeError / ValueError on retyped fields
        ("evalscope", EVALSCOPE_REPORT, lambda r: put(r, ("metrics",), "x"), "math_500.json: metrics: expected a list"),
        ("evalscope", EVALSCOPE_REPORT, lambda r: put(r, ("metrics", 0, "score"), {}),
         "math_500.json: primary metric score: expected a finite number, got {}"),
        ("evalscope", EVALSCOPE_REPORT, lambda r: put(r, ("execution_summary", "requested"), {}),
         "math_500.json: execution_summary.requested: expected a finite number"),
        ("lm-eval", LM_EVAL_RESULTS, lambda r: put(r, ("results",), float("-inf")), "results: expected an object"),
        ("lm-eval", LM_EVAL_RESULTS, lambda r: put(r, ("results", "tiny_mmlu_gen", "exact_match,extract"), [0.75]),
         "results.tiny_mmlu_gen.exact_match,extract: expected a finite number, got [0.75]"),
        ("lm-eval", LM_EVAL_RESULTS, lambda r: put(r, ("configs", "tiny_mmlu_gen", "repeats"), {}),
         "configs.tiny_mmlu_gen.repeats: expected a finite number"),
        ("opencompass", OC_DETAILS, lambda r: [r], "cluewsc-dev.json: expected an object, got [{"),
        # a NaN score was returned as the score
        ("lm-eval", LM_EVAL_RESULTS,
         lambda r: put(r, ("results", "tiny_mmlu_gen", "exact_match,extract"), float("nan")),
         "expected a finite number, got nan"),
        # RecursionError in the JSON decoder
        ("lm-eval", LM_EVAL_RESULTS, lambda r: put(r, ("lm_eval_version",), "DEEP"), "JSON nested too deeply"),
    ],
    ids=["metrics-text", "score-object", "requested-object", "results-infinite", "score-list", "repeats-object",
         "details-list", "score-nan", "nested-too-deeply"],
)
def test_broken_json_names_file_and_field(results_dir: Path, tmp_path: Path, run: str, rel: str,
                                          change: Callable[[Any], Any], expected: str) -> None:
    folder = copy_run(results_dir, tmp_path, run)
    edit_json(folder / rel, change)
    path = folder / rel
    path.write_text(path.read_text(encoding="utf-8").replace('"DEEP"', "[" * 5000 + "]" * 5000), encoding="utf-8")
    with pytest.raises(ResultsError) as info:
        read_results(folder)
    assert expected in str(info.value) and rel.split("/")[-1] in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("run", "rel", "change", "expected"),
    [
        ("evalscope", EVALSCOPE_REVIEW, lambda row: put(row, ("sample_score", "score", "value"), [1]),
         "math_500_Level 1.jsonl:1: sample_score.score.value: expected an object"),
        ("evalscope", EVALSCOPE_REVIEW, lambda row: put(row, ("sample_score", "score", "value", "accuracy"), "{}"),
         "math_500_Level 1.jsonl:1: score of accuracy: expected a finite number, got '{}'"),
        ("evalscope", EVALSCOPE_REVIEW, lambda row: [row], "math_500_Level 1.jsonl:1: expected an object, got [{"),
        ("lm-eval", LM_EVAL_SAMPLES, lambda row: put(row, ("exact_match",), ""),
         ".jsonl:1: exact_match: expected a finite number, got ''"),
    ],
    ids=["value-list", "score-text", "row-list", "lm-eval-score-text"],
)
def test_broken_jsonl_row_names_file_line_and_field(results_dir: Path, tmp_path: Path, run: str, rel: str,
                                                    change: Callable[[Any], Any], expected: str) -> None:
    folder = copy_run(results_dir, tmp_path, run)
    edit_first_row(folder / rel, change)
    with pytest.raises(ResultsError) as info:
        read_results(folder)
    assert expected in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("run", "rel"),
    [("evalscope", "configs/task_config.yaml"), ("evalscope", EVALSCOPE_REVIEW), ("lm-eval", LM_EVAL_SAMPLES),
     ("opencompass", OC_SUMMARY)],
)
def test_file_that_is_not_utf8_names_the_file(results_dir: Path, tmp_path: Path, run: str, rel: str) -> None:
    folder = copy_run(results_dir, tmp_path, run)
    (folder / rel).write_bytes((folder / rel).read_bytes() + b"\xff\xfe")
    with pytest.raises(ResultsError, match=f"cannot read .*{rel.split('/')[-1]}: 'utf-8' codec can't decode"):
        read_results(folder)


def test_lm_eval_responses_that_are_not_a_list_are_read(results_dir: Path, tmp_path: Path) -> None:
    folder = copy_run(results_dir, tmp_path, "lm-eval")
    edit_first_row(folder / LM_EVAL_SAMPLES, lambda row: put(row, ("resps",), 1.5))
    (record,) = read_results(folder)
    assert record.items is not None and len(record.items) == 4


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_opencompass_score_that_is_no_number_is_a_problem_not_a_score(results_dir: Path, tmp_path: Path,
                                                                       value: str) -> None:
    folder = copy_run(results_dir, tmp_path, "opencompass")
    summary = folder / OC_SUMMARY
    summary.write_text(summary.read_text().replace("cluewsc-dev,5ab83b,accuracy,gen,66.67",
                                                   f"cluewsc-dev,5ab83b,accuracy,gen,{value}"))
    dev = next(r for r in read_results(folder) if r.dataset == "cluewsc-dev")
    assert dev.score is None and dev.problems == (f"unreadable score {value!r}",)
