"""Reading the real result folders of evalscope 1.14.1, OpenCompass 0.5.4 and lm-eval 0.4.13."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_deepseek.accuracy import ResultsError, detect_backend, judge, read_results
from pytest_deepseek.accuracy.read import opencompass

OC_RUN = "opencompass/20261123_094123"


def by_name(records):
    return {r.dataset: r for r in records}


def test_detects_each_tool_from_its_layout(results_dir: Path) -> None:
    assert detect_backend(results_dir / "evalscope") == "evalscope"
    assert detect_backend(results_dir / "opencompass") == "opencompass"
    assert detect_backend(results_dir / OC_RUN) == "opencompass"
    assert detect_backend(results_dir / "lm-eval") == "lm-eval"


def test_unknown_folder_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="summary_<timestamp>.csv"):
        read_results(tmp_path)
    with pytest.raises(ResultsError, match="does not exist"):
        read_results(tmp_path / "missing")


def test_evalscope_reports_in_percent_with_items(results_dir: Path) -> None:
    records = by_name(read_results(results_dir / "evalscope"))
    assert set(records) == {"cluewsc", "math_500", "mmlu"}
    math = records["math_500"]
    assert (math.score, math.n, math.errored, math.incomplete) == (80.0, 5, 0, False)
    assert math.metric == "accuracy"
    assert math.backend == "evalscope" and math.backend_version == "1.14.1"
    assert math.config_version == "v1.1" and math.config_hash.startswith("sha256:aa6256")
    assert math.items is not None and sorted(i.score for i in math.items) == [0.0, 1.0, 1.0, 1.0, 1.0]
    mcq = records["cluewsc"]
    assert (mcq.native_name, mcq.score, mcq.n) == ("general_mcq/cluewsc", 66.67, 3)
    assert records["mmlu"].score == 75.0 and records["mmlu"].n == 4


def test_opencompass_reads_latest_summary_and_folds_mmlu(results_dir: Path) -> None:
    records = by_name(read_results(results_dir / "opencompass"))
    assert set(records) == {"cluewsc-dev", "cluewsc-test", "math_500", "mmlu"}
    dev = records["cluewsc-dev"]
    assert (dev.score, dev.n, dev.config_version) == (66.67, 3, "5ab83b")
    assert [i.score for i in dev.items] == [1.0, 1.0, 0.0]
    assert records["math_500"].native_name == "math-500" and records["math_500"].score == 80.0
    mmlu = records["mmlu"]
    assert (mmlu.score, mmlu.n, mmlu.native_name) == (50.0, 2, "lukaemon_mmlu_* (2 subjects)")
    assert mmlu.source.endswith("summary_20261123_094256.csv")


def test_opencompass_failed_row_is_an_error_not_a_score(results_dir: Path) -> None:
    first = results_dir / OC_RUN / "summary" / "summary_20261123_094123.csv"
    records = by_name(read_results(first))
    math = records["math_500"]
    assert math.score is None and math.incomplete
    assert "printed '-'" in math.problems[0]
    check = judge({"name": "math_500", "min": 10.0}, math, expected_items=None)
    assert check.verdict == "error"
    assert "its evaluation failed" in check.message


def test_opencompass_failed_subject_fails_the_mmlu_fold(results_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(results_dir / OC_RUN, run)
    summary = run / "summary" / "summary_20261123_094256.csv"
    summary.write_text(summary.read_text().replace("lukaemon_mmlu_astronomy,bf6b83,accuracy,gen,100.00",
                                                   "lukaemon_mmlu_astronomy,-,-,-,-"))
    mmlu = by_name(opencompass.read(run))["mmlu"]
    assert mmlu.score is None and mmlu.incomplete


def test_lm_eval_reads_metric_under_filter(results_dir: Path) -> None:
    (record,) = read_results(results_dir / "lm-eval")
    assert (record.dataset, record.metric, record.score, record.n) == ("tiny_mmlu_gen", "exact_match,extract", 75.0, 4)
    assert record.backend_version == "0.4.13" and record.config_version == "1.0"
    assert record.config_hash.startswith("56ccf8fc")
    assert [i.score for i in record.items] == [1.0, 1.0, 0.0, 1.0]
    assert record.notes == ("lm-eval stderr 25.00 points",)


def test_records_serialise_to_plain_json(results_dir: Path) -> None:
    import json

    for record in read_results(results_dir / "evalscope"):
        data = json.loads(json.dumps(record.to_dict()))
        assert data["dataset"] == record.dataset and data["items"][0][0] == record.items[0].id


def test_evalscope_errored_item_fails_the_gate_not_passes_higher(results_dir: Path) -> None:
    # A real evalscope run (ignore_errors=True) where one MMLU request answered HTTP 500: evalscope
    # drops the item and reports 5/7 = 71.43 instead of 5/8 = 62.5.
    records = by_name(read_results(results_dir / "evalscope-errored"))
    mmlu = records["mmlu"]
    assert (mmlu.score, mmlu.n, mmlu.requested, mmlu.errored, mmlu.incomplete) == (71.43, 7, 8, 1, True)
    check = judge({"name": "mmlu", "min": 60.0}, mmlu, expected_items=None)
    assert check.verdict == "error"
    assert "1 item(s) errored" in check.message
    assert check.metrics["errored"] == 1
    dev = records["cluewsc-dev"]
    assert (dev.native_name, dev.score, dev.n, dev.errored) == ("general_mcq/cluewsc_dev", 75.0, 8, 0)
    assert judge({"name": "cluewsc-dev", "min": 70.0}, dev, expected_items=8).verdict == "pass"
