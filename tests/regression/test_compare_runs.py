"""`pytest-deepseek compare` on real run folders: the serving gate run in a subprocess against the simulated
engine at two speeds. The slower engine is a significant regression; the same engine twice is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_deepseek import cli
from pytest_deepseek.regression.against import against_baseline
from pytest_deepseek.regression.baseline import load_results, save_baseline
from pytest_deepseek.regression.load import load_run
from pytest_deepseek.regression.spec import RegressionSpec
from pytest_deepseek.testing import LOADED_BOX

from plugin.helpers import latest_run, make_project  # tests/ is on sys.path: its packages import from there

THRESHOLDS = """\
version: 1
profiles:
  sim:
    serving:
      defaults: {dataset: random, warmup: 2, num_prompts: 40, client_health: %s}
      scenarios:
        - input_len: 64
          output_len: 16
          concurrency: 4
          floors: {output_throughput_per_node: 5}
""" % LOADED_BOX
# A loaded 2-core box moves the figures of two runs of one engine by several percent: the plumbing is
# tested with tolerances that only a real slow-down (twice the decode step) can break.
LOOSE = ["--tolerance", "output_throughput_per_node=25%", "--tolerance", "input_throughput_per_node=25%"]


def gate_run(pytester: pytest.Pytester, step_ms: int) -> Path:
    result = pytester.runpytest_subprocess(f"--endpoint=sim://fast?step_base_ms={step_ms}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    return latest_run(pytester)


def test_a_slower_engine_is_a_regression_and_the_same_engine_is_not(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    make_project(pytester, THRESHOLDS)
    baseline, again, slower = gate_run(pytester, 8), gate_run(pytester, 8), gate_run(pytester, 16)
    results = pytester.path / "deepseek-results"
    save_baseline(baseline, "main", results)

    out_json = pytester.path / "same.json"
    assert cli.main(["compare", "main", str(again), "--results-dir", str(results), "--json", str(out_json),
                     *LOOSE]) == cli.EXIT_PASSED
    out = capsys.readouterr().out
    assert "sim:in64-out16-c4" in out and "output_throughput_per_node" in out
    same = json.loads(out_json.read_text())
    (test,) = same["tests"]
    metrics = {m["metric"]: m for m in test["metrics"]}
    assert metrics["output_throughput_per_node"]["verdict"] != "fail" and same["regressed"] is False
    assert {d["field"] for d in same["fingerprint_differences"]} <= {"python"}  # same engine, same conditions

    out_json = pytester.path / "slower.json"
    assert cli.main(["compare", str(baseline), str(slower), "--json", str(out_json), *LOOSE]) == cli.EXIT_NOT_PASSED
    out = capsys.readouterr().out
    assert "FAIL" in out and "worse" in out and "step_base_ms=16" in out
    data = json.loads(out_json.read_text())
    (test,) = data["tests"]
    throughput = {m["metric"]: m for m in test["metrics"]}["output_throughput_per_node"]
    assert throughput["verdict"] == "fail" and throughput["significant"] == "worse"
    assert throughput["relative_change"] < -0.25 and throughput["high"] < -0.25
    assert "batch means" in throughput["a_method"] and "batch means" in throughput["b_method"]
    assert data["regressed"] is True and test["verdict"] == "fail"
    changed = {d["field"]: d for d in data["fingerprint_differences"]}
    assert changed["endpoint_url"]["a"] == ["sim://fast?step_base_ms=8"]
    assert changed["endpoint_url"]["b"] == ["sim://fast?step_base_ms=16"]

    # what a running session does after the test: the regression checks join the test's own result
    baseline_runs = load_run(results / "baselines" / "main", label="main")
    ((nodeid, result),) = load_results(str(slower), results).items()
    judged = against_baseline(result, nodeid, slower, baseline_runs,
                              RegressionSpec.of({"output_throughput_per_node": "25%"}))
    assert result.verdict == "pass" and judged.verdict == "fail"
    check = next(c for c in judged.checks if c.name == "regression.output_throughput_per_node")
    assert check.verdict == "fail" and check.details["against"] == "main" and "FAIL" in judged.failure_text()
