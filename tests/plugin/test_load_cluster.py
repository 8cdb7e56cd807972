"""The serving gate with its load sent from Ray actors (`--deepseek-load-cluster`), against a local
Ray cluster on 127.0.0.1: the same tests and verdicts as a local run, every request once with the
simulator's tokens, each worker's clock offset reported, and no Ray process left afterwards.

Needs Ray (`pip install -e ".[ray]"`); without it the cluster tests skip, unless
DEEPSEEK_REQUIRE_RAY=1 (set by CI) turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.testing import LOADED_BOX
from pytest_deepseek.testing.ray_cluster import LocalRayCluster, free_port

from .helpers import latest_run, make_project, records, summary

THRESHOLDS = """\
version: 1
profiles:
  sim-fast:
    endpoint: sim://fast?step_base_ms=8
    serving:
      defaults: {dataset: random, warmup: 2, num_prompts: 40, client_health: %(client_health)s}
      scenarios:
        - input_len: 64
          output_len: 16
          concurrency: 4
          floors: {output_throughput_per_node: 5}
          ceilings: {error_rate: 0.2}
        - input_len: 32
          output_len: 8
          request_rate: 40
""".replace("%(client_health)s", LOADED_BOX)
ENDPOINT = "--endpoint=sim://fast?step_base_ms=8"
PLANNED = 40
WARMUP = 2
LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")
ONE_HOST_OFFSET_MS = 5.0  # one clock on one host: the estimate is 0 within a local round trip


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is not None:
        return
    if os.environ.get("DEEPSEEK_REQUIRE_RAY") == "1":
        pytest.fail('DEEPSEEK_REQUIRE_RAY=1 but ray cannot be imported: pip install -e ".[ray]"')
    pytest.skip('ray is not installed (pip install -e ".[ray]"); DEEPSEEK_REQUIRE_RAY=1 turns this skip into a failure')


@pytest.fixture
def ray_cluster() -> Iterator[Any]:
    """A two-CPU Ray head on 127.0.0.1, stopped (every process of its session) whatever the test did."""
    _require_ray()
    cluster = LocalRayCluster(num_cpus=2)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any], list[dict[str, Any]]]:
    result = pytester.runpytest_subprocess(ENDPOINT, "-p", "no:cacheprovider", "-p", "no:xdist", *args)
    return result, summary(pytester), records(pytester)


def _shape(data: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
    """Each test's id, verdict, scenario and check names: what must not depend on where the load ran."""
    return sorted((t["nodeid"], t["verdict"], t["scenario_id"], sorted(c["metric"] for c in t["checks"]))
                  for t in data["tests"])


def _truth(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    path = next(latest_run(pytester).rglob("sim-truth.jsonl"))
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {line["request_id"]: line for line in lines}


def test_the_suite_through_a_local_ray_cluster_matches_a_local_run(pytester: pytest.Pytester, ray_cluster: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, THRESHOLDS)
    local, local_summary, _ = _run(pytester)
    local.assert_outcomes(passed=2)

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    result, data, recs = _run(pytester, f"--deepseek-load-cluster={ray_cluster.address}", "--deepseek-load-workers=2")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "deepseek gate summary" in out and "in64-out16-c4" in out and "Traceback" not in out
    assert _shape(data) == _shape(local_summary)

    # Every planned request was sent once, from the workers, with the simulator's own token counts.
    truth = _truth(pytester)
    for test in data["tests"]:
        mine = [r for r in recs if r["scenario"] == test["scenario_id"]]
        assert sum(not r["warmup"] for r in mine) == PLANNED and sum(r["warmup"] for r in mine) == WARMUP
        assert test["metrics"]["completed"] == PLANNED and test["metrics"]["failed"] == 0
        assert len({r["request_id"] for r in mine}) == len(mine)
        for record in mine:
            assert record["completion_tokens"] == truth[record["request_id"]]["completion_tokens"]

        # Two actors, each with its clock offset measured and small on one host.
        workers = test["client"]["workers"]
        assert len(workers) == 2 and all(w["where"].startswith("ray actor ") for w in workers), workers
        for worker in workers:
            assert abs(worker["clock_offset_ms"]) < ONE_HOST_OFFSET_MS, worker
            assert 0 < worker["clock_uncertainty_ms"] < ONE_HOST_OFFSET_MS, worker
            assert worker["clock_drift_ms"] is not None
    log = next((latest_run(pytester) / "logs").glob("*in64-out16-c4*")).read_text()
    assert "Load worker ray actor 0 on " in log and "clock offset" in log and "Output Throughput: " in log

    # The cluster listened on loopback only, and stopping it leaves no Ray process behind.
    listening = _listening_ports(ray_cluster.members())
    assert ray_cluster.port in {port for _, port in listening}
    assert all(host in LOOPBACK for host, _ in listening), listening
    ray_cluster.stop()
    assert ray_cluster.members() == []


KILL_ONE_ACTOR = """\
import json, os, signal, sys
from pathlib import Path
from pytest_deepseek.serving.measure import LoadRun, RequestPlan, ServingTarget
from pytest_deepseek.serving.ray_link import run_on_cluster
from pytest_deepseek.serving.records import RequestSpec
from pytest_deepseek.serving.spec import Scenario
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.testing.ray_cluster import session_members

address, session = sys.argv[1], int(sys.argv[2])
scenario = Scenario(input_len=32, output_len=32, concurrency=4, num_prompts=400)
killed = []


def kill_one(record):
    if killed or record.warmup:
        return
    for pid in session_members(session):
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::LoadActor"):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return


with start_sim("sim://fast?step_base_ms=5", truth_path=Path("truth.jsonl")) as sim:
    specs = [RequestSpec(index=i, api="completions", model=sim.model, prompt="hello " * 32, max_tokens=32)
             for i in range(400)]
    run = LoadRun(scenario, ServingTarget(base_url=sim.base_url, model=sim.model, api="completions", simulated=True),
                  RequestPlan([], specs, {}), request_prefix="k")
    load = run_on_cluster(address, run, 2, kill_one)
print(json.dumps({"killed": killed, "cut_short": load.cut_short, "records": len(load.records),
                  "completed": sum(r.success for r in load.records)}))
"""


def test_a_killed_actor_cuts_the_run_and_is_named(ray_cluster: Any, tmp_path: Path) -> None:
    # In a subprocess: the test process never joins a Ray cluster itself.
    done = subprocess.run([sys.executable, "-c", KILL_ONE_ACTOR, ray_cluster.address, str(ray_cluster.sid)],
                          cwd=tmp_path, env=ray_cluster.environment(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(outcome["killed"]) == 1, outcome
    cut = outcome["cut_short"] or ""
    assert "stopped: load worker ray actor " in cut and f"pid {outcome['killed'][0]})" in cut, cut
    assert "failed while measuring" in cut and "of 400 requests measured" in cut
    assert 0 < outcome["completed"] < 400 and outcome["records"] < 400


def test_an_unreachable_cluster_is_an_error_that_says_so(pytester: pytest.Pytester) -> None:
    _require_ray()
    make_project(pytester, THRESHOLDS)
    address = f"127.0.0.1:{free_port()}"
    result, data, recs = _run(pytester, f"--deepseek-load-cluster={address}")
    result.assert_outcomes(failed=2)
    assert f"could not join the Ray cluster at {address}: nothing answers there" in result.stdout.str()
    assert {t["verdict"] for t in data["tests"]} == {"error"}
    assert recs == []


def test_a_bad_cluster_address_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, THRESHOLDS)
    result = pytester.runpytest_subprocess(ENDPOINT, "--deepseek-load-cluster=http://head:6379",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--deepseek-load-cluster must be auto, ray://HOST:PORT or HOST:PORT" in result.stderr.str()


def _listening_ports(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets the processes listen on, from /proc."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(_address(fields[1]))
    return found


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return ".".join(str(b) for b in reversed(raw)), int(port, 16)
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    packed = b"".join(words)
    if packed[:12] == b"\x00" * 10 + b"\xff\xff":
        return "::ffff:" + ".".join(str(b) for b in packed[12:]), int(port, 16)
    return str(ipaddress.IPv6Address(packed)), int(port, 16)
