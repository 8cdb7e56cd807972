"""--deepseek-baseline and --deepseek-save-baseline in a pytest run: the serving gate in a subprocess
against the simulated engine, saved as a baseline, then run against it slower and at the same speed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek import cli
from pytest_deepseek.testing import LOADED_BOX

from plugin.helpers import latest_run, make_project, summary  # tests/ is on sys.path: its packages import from there

# Identical simulated runs on a loaded 2-core box differ by about 10%: only a real slow-down (the decode
# step almost four times longer) may break these tolerances.
THRESHOLDS = """\
version: 1
regression:
  output_throughput_per_node: 25%
  input_throughput_per_node: 25%
  ttft_ms.p99: 200%
  tpot_ms.p99: 200%
  error_rate: 0.2
profiles:
  sim:
    error_budget: 0.2
    serving:
      defaults: {dataset: random, warmup: 2, num_prompts: 40, client_health: CLIENT_HEALTH}
      scenarios:
        - input_len: 64
          output_len: 16
          concurrency: 4
          floors: {output_throughput_per_node: 5}
""".replace("CLIENT_HEALTH", LOADED_BOX)
FAST = "--endpoint=sim://fast?step_base_ms=8"
SLOW = "--endpoint=sim://fast?step_base_ms=30"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")


def regression_checks(test: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in test["checks"] if c["name"].startswith("regression.")}


def test_a_run_saved_as_baseline_fails_a_slower_run_and_passes_the_same_engine(pytester: pytest.Pytester) -> None:
    make_project(pytester, THRESHOLDS)
    first = run(pytester, FAST, "--deepseek-save-baseline=v1")
    first.assert_outcomes(passed=1)
    saved = pytester.path / "deepseek-results" / "baselines" / "v1"
    assert f"deepseek: saved this run as the baseline {saved}" in first.stdout.str()
    assert (saved / "baseline.json").is_file() and (saved / "summary.json").is_file()
    (only,) = summary(pytester)["tests"]
    assert not regression_checks(only)  # no baseline given: nothing compared

    slower = run(pytester, SLOW, "--deepseek-baseline=v1", "--deepseek-html=slower.html")
    slower.assert_outcomes(failed=1)
    (test,) = summary(pytester)["tests"]
    checks = regression_checks(test)
    throughput = checks["regression.output_throughput_per_node"]
    assert throughput["verdict"] == "fail" and test["verdict"] == "fail"
    assert all(c["verdict"] == "pass" for c in test["checks"] if not c["name"].startswith("regression."))
    assert "regression.output_throughput_per_node" in slower.stdout.str()
    # Another engine configuration than the baseline's is said, not hidden.
    (changed,) = [w for w in test["warnings"] if "other conditions than the baseline v1" in w]
    assert "endpoint_url" in changed and "step_base_ms=30" in changed
    assert ">baseline<" in (pytester.path / "slower.html").read_text()  # the baseline beside the run's figure
    slower_run, slower_test = latest_run(pytester), test

    # 40 requests cannot bound a p99 in either run: those checks stay undecided, and are let pass here
    same = run(pytester, FAST, "--deepseek-baseline=v1", "--deepseek-allow-inconclusive")
    (test,) = summary(pytester)["tests"]
    checks = regression_checks(test)
    assert checks["regression.output_throughput_per_node"]["verdict"] == "pass", checks
    assert not [name for name, c in checks.items() if c["verdict"] == "fail"], checks
    same.assert_outcomes(passed=1)
    assert test["verdict"] == "pass" and latest_run(pytester) != saved
    assert not [w for w in test["warnings"] if "other conditions" in w], test["warnings"]

    # Rebuilt from its files alone, with the baseline gone: the slower run still fails against it.
    shutil.rmtree(saved)
    (slower_run / "summary.json").unlink()
    assert cli.main(["report", str(slower_run)]) == 1
    (rebuilt,) = json.loads((slower_run / "summary.json").read_text())["tests"]
    assert rebuilt["verdict"] == "fail"
    assert rebuilt["checks"] == slower_test["checks"] and rebuilt["warnings"] == slower_test["warnings"]


def test_an_unknown_baseline_is_a_usage_error_naming_the_saved_ones(pytester: pytest.Pytester) -> None:
    make_project(pytester, THRESHOLDS)
    for name in ("main", "v1"):
        run_dir = pytester.path / "deepseek-results" / "baselines" / name
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"run": {"id": name}, "tests": []}))
        (run_dir / "baseline.json").write_text(json.dumps({"name": name}))
    result = run(pytester, FAST, "--deepseek-baseline=v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--deepseek-baseline" in err and "'v2'" in err and "saved baselines: main, v1" in err


def test_a_malformed_regression_key_is_an_error_at_its_line(pytester: pytest.Pytester) -> None:
    make_project(pytester, THRESHOLDS.replace("  ttft_ms.p99: 200%", "  ttft_ms: 200%"))
    result = run(pytester, FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"{Path('thresholds.yaml')}:5: regression.ttft_ms: " in err and "ttft_ms.p99" in err
