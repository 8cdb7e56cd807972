"""The serving gate as users run it: pytest in a subprocess against the simulated engine."""

from __future__ import annotations

import csv
import json
import re
import socket
import time
import xml.etree.ElementTree as ET

import pytest

from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, records, summary

FAST = """\
version: 1
profiles:
  sim-fast:
    endpoint: sim://fast?step_base_ms=8
    nodes: 2
    devices_per_node: 4
    serving:
      defaults: {dataset: random, warmup: 2, num_prompts: 40, client_health: %(client_health)s}
      scenarios:
        - input_len: 64
          output_len: 16
          concurrency: 4
          floors: {output_throughput_per_node: %(floor)s}
          ceilings: {error_rate: 0.2}
        - input_len: 32
          output_len: 8
          request_rate: 40
""".replace("%(client_health)s", LOADED_BOX)


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_passing_run_writes_every_output(pytester):
    make_project(pytester, FAST % {"floor": 5})
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "SIMULATED" in out and "deepseek: endpoint sim://fast?step_base_ms=8" in out
    assert "deepseek gate summary" in out and "in64-out16-c4" in out and "PASS" in out
    data = summary(pytester)
    assert data["run"]["simulated"] is True and data["run"]["profiles"] == ["sim-fast"]
    assert set(data["run"]) >= {"id", "started", "plugin_version", "endpoint", "model", "profiles"}
    closed = next(t for t in data["tests"] if t["scenario"]["mode"] == "closed")
    assert closed["kind"] == "serving" and closed["verdict"] == "pass" and closed["profile"] == "sim-fast"
    assert closed["scenario"]["input_len"] == 64 and closed["scenario"]["concurrency"] == 4
    metrics = closed["metrics"]
    assert metrics["completed"] == 40 and metrics["failed"] == 0
    assert metrics["output_throughput_per_node"] == pytest.approx(metrics["output_throughput"] / 2)
    assert set(metrics["ttft_ms"]) == {"mean", "p50", "p90", "p95", "p99"}
    check = closed["checks"][0]
    assert check["metric"] == "output_throughput_per_node" and check["op"] == ">=" and check["verdict"] == "pass"
    assert check["low"] <= check["value"] <= check["high"]
    run = latest_run(pytester)
    rows = list(csv.DictReader((run / "test_result.csv").open()))
    assert len(rows) == 2 and {r["verdict"] for r in rows} == {"pass"}
    recs = records(pytester)
    assert len(recs) == 2 * 40 + 2 * 2 and sum(r["warmup"] for r in recs) == 4
    assert all(r["prompt_tokens"] in (64, 32) for r in recs)
    log = (run / "logs").glob("*in64-out16-c4*")
    assert "Output Throughput: " in next(log).read_text()
    junit = ET.parse(pytester.path / "junit.xml")
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props["deepseek.verdict"] == "pass" and props["deepseek.simulated"] == "True"


def test_failing_floor_says_expected_measured_and_where(pytester):
    make_project(pytester, FAST % {"floor": 10_000_000})
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "output_throughput_per_node >= 10000000" in out
    assert "FAIL" in out and "records: " in out and "records.jsonl" in out
    assert "Traceback" not in out
    assert summary(pytester)["tests"][0]["verdict"] in ("fail", "pass")


@pytest.mark.parametrize("xdist_args", [(), ("-n0",), ("-n2",)])
def test_xdist_off_n0_n2(pytester, xdist_args):
    make_project(pytester, FAST % {"floor": 5})
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider", *xdist_args)
    result.assert_outcomes(passed=2)
    data = summary(pytester)
    assert len(data["tests"]) == 2 and {t["verdict"] for t in data["tests"]} == {"pass"}
    # Perf runs against one endpoint never overlap, even on two workers.
    spans = {}
    for rec in records(pytester):
        lo, hi = spans.get(rec["scenario"], (rec["t_send"], rec["t_end"]))
        spans[rec["scenario"]] = (min(lo, rec["t_send"]), max(hi, rec["t_end"]))
    (a0, a1), (b0, b1) = spans.values()
    assert a1 <= b0 or b1 <= a0


def test_unreachable_endpoint_is_one_clear_error(pytester):
    make_project(pytester, FAST % {"floor": 5})
    port = closed_port()
    result = pytester.runpytest_subprocess(f"--endpoint=http://127.0.0.1:{port}/v1", "--deepseek-profile=sim-fast",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"127.0.0.1:{port}/v1 is not usable" in err
    assert "passed" not in result.stdout.str()


def test_unknown_model_lists_available_models(pytester):
    make_project(pytester, FAST % {"floor": 5})
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "--deepseek-model=deepseek-ai/DeepSeek-V9",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "available models: deepseek-ai/DeepSeek-V3" in result.stderr.str()


def test_malformed_thresholds_names_the_line(pytester):
    make_project(pytester, (FAST % {"floor": 5}).replace("concurrency: 4", "concurency: 4"))
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "thresholds.yaml:12: profiles.sim-fast.serving.scenarios[0].concurency: unknown key" in err
    assert "did you mean 'concurrency'?" in err


def test_bad_option_value_is_a_usage_error(pytester):
    make_project(pytester, FAST % {"floor": 5})
    result = pytester.runpytest_subprocess("--deepseek-api=grpc", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--deepseek-api must be completions or chat" in result.stderr.str()


def test_adhoc_grid_makes_one_test_per_cell(pytester):
    make_project(pytester, FAST % {"floor": 5})
    result = pytester.runpytest_subprocess(
        "--endpoint=sim://fast?step_base_ms=8", "--deepseek-profile=sim-fast", "--deepseek-input-len=32,48", "--deepseek-output-len=8",
        "--deepseek-concurrency=2", "--deepseek-num-prompts=6", "--deepseek-warmup=0", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_serving?sim-fast:in32-out8-c2?*PASSED*",
                                 "*test_serving?sim-fast:in48-out8-c2?*PASSED*"])
    assert summary(pytester)["run"]["overrides"]["concurrency"] == [2]


def test_server_errors_mid_run_are_recorded_not_a_crash(pytester):
    make_project(pytester, FAST % {"floor": 5})
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8&fail_every=4&fail_midstream_every=5",
                                           "--deepseek-profile=sim-fast", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "ERROR" in out and "requests failed" in out and "budget 1.00%" in out
    # One failure in 40 planned blows a 1% budget: the scenario stops there, its records kept.
    assert "stopped: 1 failed requests exceed the error budget (1.00% of 40 planned)" in out
    closed = next(t for t in summary(pytester)["tests"] if t["scenario"]["mode"] == "closed")
    assert closed["verdict"] == "error" and closed["metrics"]["failed"] == 1
    assert sum(closed["metrics"]["failed_by_kind"].values()) == closed["metrics"]["failed"]
    on_disk = [r for r in records(pytester) if r["scenario"] == closed["scenario_id"] and not r["warmup"]]
    in_flight = [r for r in on_disk if not r["success"] and r["error_kind"] is None]
    assert closed["metrics"]["completed"] + closed["metrics"]["failed"] + len(in_flight) == len(on_disk) < 40


def test_a_killed_run_keeps_what_it_measured(pytester):
    import os
    import signal
    import subprocess
    import sys
    import time

    make_project(pytester, """\
version: 1
profiles:
  slow:
    endpoint: sim://deepseek-v3?step_base_ms=10
    serving:
      scenarios:
        - {input_len: 32, output_len: 16, concurrency: 2, num_prompts: 3000}
""")
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--endpoint=sim://deepseek-v3?step_base_ms=10",
                                "-p", "no:cacheprovider"], cwd=pytester.path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    records_file = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((pytester.path / "deepseek-results").glob("*/records.jsonl"))
        if found and found[0].stat().st_size > 0 and len(found[0].read_text().splitlines()) >= 10:
            records_file = found[0]
            break
        time.sleep(0.2)
    assert records_file is not None, "no records were written while the run was going"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    lines = records_file.read_text().splitlines()
    assert len(lines) >= 10 and all(line.endswith("}") for line in lines)
    # The simulator the run started goes away with it (no server left behind on the port).
    sim_log = next((pytester.path / "deepseek-results").glob("*/sim/sim.log"), None)
    assert sim_log is not None
    time.sleep(2.5)
    leftover = subprocess.run(["pgrep", "-f", f"--truth {sim_log.parent}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", f"simulator still running: {leftover.stdout}"
    assert os.path.exists(records_file)


SLOW = """\
version: 1
profiles:
  sim-slow:
    endpoint: sim://fast?step_base_ms=100
    serving:
      defaults: {dataset: random, warmup: 0, num_prompts: 40, client_health: %(client_health)s}
      scenarios:
        - {input_len: 32, output_len: 16, concurrency: 2}
        - {input_len: 16, output_len: 16, concurrency: 2}
    training:
      - name: toy
        log: toy.jsonl
        dialect: jsonl
        converge: {metric: loss, below: 1.0, within: 5, statistic: raw}
""".replace("%(client_health)s", LOADED_BOX)
DEADLINE_S = 8
MARGIN_S = 30  # start-up and teardown on a busy 2-core box


def test_the_session_deadline_stops_the_run_in_time(pytester):
    """A scenario running at the deadline stops (ERROR, its records kept); the tests after it are not run
    (ERROR, never a skip), the run ends about when the deadline says."""
    make_project(pytester, SLOW, suites=("test_serving.py", "test_training.py"))
    (pytester.path / "toy.jsonl").write_text("\n".join(f'{{"step": {i}, "loss": {2.0 / i}}}' for i in range(1, 7)))
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=100", f"--deepseek-session-deadline={DEADLINE_S}s",
                                           "-p", "no:cacheprovider")
    took = time.monotonic() - started
    assert took < DEADLINE_S + MARGIN_S, took  # 40 requests of 1.6 s on two clients would take 32 s more
    result.assert_outcomes(failed=3)
    tests = {t["scenario_id"]: t for t in summary(pytester)["tests"]}
    cut, later, training = tests["in32-out16-c2"], tests["in16-out16-c2"], tests["toy:convergence"]
    assert cut["verdict"] == "error"
    problem = next(p for p in cut["errors"] if p.startswith("session deadline"))
    assert re.fullmatch(rf"session deadline of {DEADLINE_S} s reached after [0-9.]+ s: \d+ of 40 requests measured; "
                        r"records: .*records\.jsonl", problem), problem
    measured = int(problem.split(": ")[1].split(" of ")[0])
    on_disk = [r for r in records(pytester) if r["scenario"] == "in32-out16-c2"]
    assert sum(r["success"] or r["error_kind"] is not None for r in on_disk) == measured
    assert any(not r["success"] and r["error_kind"] is None for r in on_disk)  # cut in flight, kept as such
    for entry in (later, training):
        assert entry["verdict"] == "error"
        assert entry["errors"][0].startswith(f"not run: the session deadline of {DEADLINE_S} s passed"), entry
    lines = [json.loads(line) for line in (latest_run(pytester) / "records.jsonl").read_text().splitlines()]
    assert any(line.get("type") == "scenario_unmeasured" and line["scenario"] == "in16-out16-c2" for line in lines)
    assert "skipped" not in result.parseoutcomes()
