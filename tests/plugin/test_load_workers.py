"""`--deepseek-load-workers`: the shipped serving suite sends its load from several processes and ends in
the same summary, tables and records as one process (xdist off and on).

Real simulators on 127.0.0.1, short scenarios; figures compared with wide margins (busy box).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.serving.measure import cpus_for_load
from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, records, summary

URL = "sim://fast?step_base_ms=10&step_per_seq_ms=0"
THRESHOLDS = f"""\
version: 1
profiles:
  p:
    nodes: 2
    serving:
      defaults: {{dataset: random, warmup: 2, client_health: {LOADED_BOX}}}
      scenarios:
        - {{input_len: 32, output_len: 24, concurrency: 4, num_prompts: 32, floors: {{output_throughput_per_node: 1}}}}
        - {{input_len: 32, output_len: 24, request_rate: 30, num_prompts: 32, floors: {{output_throughput_per_node: 1}}}}
"""
QUIET = ("-p", "no:cacheprovider")


def _serving(run: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((run / "summary.json").read_text())
    return {t["nodeid"]: t for t in data["tests"] if t["kind"] == "serving"}


def _truth(run: Path) -> dict[str, dict[str, Any]]:
    lines = (run / "sim" / "sim-truth.jsonl").read_text().splitlines()
    return {t["request_id"]: t for t in map(json.loads, lines) if t.get("request_id")}


@pytest.mark.parametrize("xdist", ["0", "2"])
def test_two_load_workers_end_in_the_same_results_as_one(pytester: Any, xdist: str) -> None:
    make_project(pytester, THRESHOLDS)
    one = pytester.runpytest_subprocess(f"--endpoint={URL}", "-n", xdist, *QUIET)
    one.assert_outcomes(passed=2)
    one_run = latest_run(pytester)
    two = pytester.runpytest_subprocess(f"--endpoint={URL}", "--deepseek-load-workers=2", "-n", xdist, *QUIET)
    two.assert_outcomes(passed=2)
    two_run = latest_run(pytester)
    assert two_run != one_run

    single, split = _serving(one_run), _serving(two_run)
    assert set(single) == set(split) and len(split) == 2
    for nodeid, test in split.items():
        assert test["verdict"] == single[nodeid]["verdict"] == "pass"
        assert test["metrics"]["completed"] == single[nodeid]["metrics"]["completed"] == 32
        workers = test["client"]["workers"]
        assert len(workers) == 2 and all(w["cpu_fraction"] is not None for w in workers)
        assert "workers" not in single[nodeid]["client"]
        ratio = test["metrics"]["output_throughput_per_node"] / single[nodeid]["metrics"]["output_throughput_per_node"]
        assert 0.7 < ratio < 1.4, (nodeid, ratio)  # same simulator, same pacing; per node over the profile's 2 nodes

    # every request once, in records.jsonl, with the simulator's own token count
    written = [r for r in records(pytester) if not r["warmup"]]
    assert len(written) == 64 and len({r["request_id"] for r in written}) == 64
    truth = _truth(two_run)
    assert all(r["completion_tokens"] == truth[r["request_id"]]["completion_tokens"] for r in written)


def test_auto_and_bad_values(pytester: Any) -> None:
    make_project(pytester, THRESHOLDS)
    auto = pytester.runpytest_subprocess(f"--endpoint={URL}", "--deepseek-load-workers=auto", "-n", "0", *QUIET)
    auto.assert_outcomes(passed=2)
    expected = min(cpus_for_load(), 4)  # one per CPU, never more than the closed loop's 4 clients
    for test in summary(pytester)["tests"]:
        assert len(test["client"].get("workers", [])) == (expected if expected > 1 else 0), test["client"]
    bad = pytester.runpytest_subprocess(f"--endpoint={URL}", "--deepseek-load-workers=zero", *QUIET)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--deepseek-load-workers must be a positive number or auto, got 'zero'" in bad.stderr.str()
