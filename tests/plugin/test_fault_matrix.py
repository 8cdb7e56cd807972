"""Every fault a cluster can throw, end to end: injected by the simulator, run through the shipped
serving suite, recorded with its kind, counted against the error budget, shown in the report, and
the figures still agreeing with the simulator's ground truth around the failures."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.sim.config import SimConfig
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.presets import get_preset
from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, records, summary

PROMPTS = 12
THRESHOLDS = """\
version: 1
defaults: {error_budget: %(budget)s}
profiles:
  sim-faults:
    serving:
      defaults: {dataset: random, warmup: 0, num_prompts: %(prompts)s, client_health: %(health)s}
      scenarios:
        - {input_len: 32, output_len: 16, concurrency: 3}
"""
SIM = "sim://fast?step_base_ms=5"
FAULTED = (4, 9)  # generation requests (in arrival order) the simulator breaks
BUDGET = 0.1  # of 12 planned: the first failure is within it, the second blows it and stops the run
MARGIN_S = 60.0  # a busy 2-core box: plumbing, not timing fidelity


@dataclass(frozen=True)
class Fault:
    """A simulator fault, the record kind it must become, and the deadlines that catch it."""

    name: str
    kind: str | None  # None: not a failure (the stream still completed)
    sim: str = ""  # extra sim URL options
    options: tuple[str, ...] = ()


FAULTS = [
    Fault("http_500", "http_5xx"),
    Fault("http_502", "http_5xx"),
    Fault("http_503", "http_5xx"),
    Fault("rate_limited", "rate_limited", "&retry_after_s=7"),
    Fault("reset_before_headers", "reset"),
    Fault("reset_midstream", "reset"),
    Fault("stall", "stall", "&stall_s=600", ("--deepseek-stall-timeout=1",)),
    Fault("malformed", "malformed"),
    Fault("error_event", "server_error_event"),
    Fault("truncated", "truncated"),
    Fault("slow_headers", "first_byte_timeout", "&header_trickle_s=0.5", ("--deepseek-first-byte-timeout=1.5",)),
    Fault("endless", "timeout", "", ("--deepseek-request-timeout=3",)),
    Fault("no_done", None),
    Fault("no_usage", None),
]


def _run(pytester: Any, endpoint: str, budget: float, *options: str) -> tuple[Any, float]:
    make_project(pytester, THRESHOLDS % {"budget": budget, "prompts": PROMPTS, "health": LOADED_BOX})
    started = time.monotonic()
    result = pytester.runpytest_subprocess(f"--endpoint={endpoint}", "-p", "no:cacheprovider", *options)
    return result, time.monotonic() - started


def _truth(pytester: Any) -> dict[str, dict[str, Any]]:
    """The simulator's ground truth of the latest run, by request id."""
    path = next(latest_run(pytester).rglob("sim-truth.jsonl"))
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {line["request_id"]: line for line in lines}


def _serving_entry(pytester: Any) -> dict[str, Any]:
    return next(t for t in summary(pytester)["tests"] if t["kind"] == "serving")


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_fault_is_recorded_with_its_kind_and_counted(pytester: Any, fault: Fault) -> None:
    at = ",".join(str(n) for n in FAULTED)
    endpoint = f"{SIM}&fault_{fault.name}=at:{at}{fault.sim}"
    result, took = _run(pytester, endpoint, BUDGET, *fault.options)
    assert took < MARGIN_S, f"the run took {took:.0f} s"
    truth = _truth(pytester)
    recs = [r for r in records(pytester) if not r["warmup"]]
    faulted = {rid for rid, t in truth.items() if t.get("fault") == fault.name}
    assert len(faulted) == len(FAULTED), truth
    entry = _serving_entry(pytester)
    failures = entry["failures"]
    by_id = {r["request_id"]: r for r in recs}
    if fault.kind is None:  # the stream still completed: counted and noted, nothing failed
        assert all(by_id[rid]["success"] for rid in faulted)
        assert failures["by_kind"] == {} and entry["metrics"]["failed"] == 0
        assert entry["metrics"]["completed"] == PROMPTS
        if fault.name == "no_done":
            result.assert_outcomes(passed=1)
            assert failures["notes"] == {"no_done": len(FAULTED)}
        else:  # without usage the prompt length cannot be verified: the measurement is not trusted
            assert failures["notes"] == {"no_usage": len(FAULTED)}
            assert all(by_id[rid]["approximate"] for rid in faulted)
            assert entry["verdict"] == "error" and "usage.prompt_tokens" in " ".join(entry["errors"])
        return
    # Both faulted requests carry the kind; the second blows the budget and stops the run.
    assert {by_id[rid]["error_kind"] for rid in faulted} == {fault.kind}
    assert {k for r in recs if (k := r["error_kind"]) is not None} == {fault.kind}
    result.assert_outcomes(failed=1)  # a gate ERROR fails its test (pytest has no other red)
    assert entry["verdict"] == "error", entry["verdict"]
    assert fault.kind in " ".join(entry["errors"]) and "error budget" in " ".join(entry["errors"])
    assert fault.kind in failures["by_kind"]
    example_ids = {e["request_id"] for e in failures["examples"][fault.kind]}
    assert example_ids <= faulted
    out = result.stdout.str()
    assert f"{fault.kind}: " in out and next(iter(example_ids)) in out
    # Goodput is what the server really delivered: completed requests and their tokens match truth.
    completed = [r for r in recs if r["success"]]
    assert entry["metrics"]["completed"] == len(completed)
    for r in completed:
        assert r["completion_tokens"] == truth[r["request_id"]]["completion_tokens"]
    if fault.kind == "rate_limited":
        assert {by_id[rid]["retry_after_s"] for rid in faulted} == {7}


def test_faults_within_the_budget_pass_and_still_show(pytester: Any) -> None:
    endpoint = f"{SIM}&fault_http_503=at:5&fault_rate_limited=at:8"
    result, _ = _run(pytester, endpoint, 0.25)
    result.assert_outcomes(passed=1)
    entry = _serving_entry(pytester)
    assert entry["failures"]["by_kind"] == {"http_5xx": 1, "rate_limited": 1}
    assert entry["metrics"]["failed"] == 2 and entry["metrics"]["completed"] == PROMPTS - 2
    assert entry["metrics"]["error_rate"] == pytest.approx(2 / PROMPTS)
    assert "requests of sim-faults:" in result.stdout.str()


def test_refused_for_a_while_then_back(pytester: Any) -> None:
    endpoint = f"{SIM}&fault_refused=at:4&refused_s=2"
    result, took = _run(pytester, endpoint, 1.0, "--deepseek-connect-timeout=5")
    assert took < MARGIN_S
    recs = [r for r in records(pytester) if not r["warmup"]]
    kinds = [r["error_kind"] for r in recs]
    assert "refused" in kinds or "reset" in kinds, kinds
    assert set(kinds) <= {None, "refused", "reset"}, kinds
    assert sum(r["success"] for r in recs) >= 1  # it came back and answered again
    entry = _serving_entry(pytester)
    assert entry["metrics"]["failed"] == sum(k is not None for k in kinds)


def _wait_for_a_completed_request(results: Path, limit_s: float = MARGIN_S) -> None:
    """Until a run's records.jsonl holds a completed request (the start-up of a busy box is not timed)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if any('"success":true' in path.read_text() for path in results.glob("*/records.jsonl")):
            return
        time.sleep(0.05)


def test_server_death_and_return(pytester: Any, tmp_path: Path) -> None:
    """A real server process killed mid-run and started again on the same port."""
    config: SimConfig = get_preset("fast").replace(step_base_ms=40.0)
    first = start_sim(config, port=None)
    port = int(str(first.base_url).rsplit(":", 1)[1].split("/")[0])
    revived: list[Any] = []

    def kill_and_revive() -> None:
        _wait_for_a_completed_request(pytester.path / "deepseek-results")  # the run is under way, however slow
        first.kill()
        time.sleep(1.0)
        revived.append(start_sim(config, port=port))

    chaos = threading.Thread(target=kill_and_revive)
    chaos.start()
    try:
        result, took = _run(pytester, f"http://127.0.0.1:{port}/v1", 1.0, "--deepseek-connect-timeout=5")
    finally:
        chaos.join()
        for sim in revived:
            sim.stop()
    assert took < MARGIN_S
    recs = [r for r in records(pytester) if not r["warmup"]]
    kinds = {r["error_kind"] for r in recs}
    assert kinds & {"reset", "refused"}, kinds
    assert kinds <= {None, "reset", "refused"}, kinds
    assert sum(r["success"] for r in recs) >= 1
    entry = _serving_entry(pytester)
    assert sum(entry["failures"]["by_kind"].values()) == entry["metrics"]["failed"]


def test_a_server_that_stops_answering_ends_within_the_deadline(pytester: Any) -> None:
    """Every request stalls: the run ends after about one stall deadline with an ERROR and its records."""
    endpoint = f"{SIM}&fault_stall=prob:1&stall_s=600"
    result, took = _run(pytester, endpoint, 0.05, "--deepseek-stall-timeout=2")
    assert took < MARGIN_S
    result.assert_outcomes(failed=1)
    entry = _serving_entry(pytester)
    assert entry["verdict"] == "error" and "stall" in entry["failures"]["by_kind"]
    assert records(pytester)  # what it measured is on disk
