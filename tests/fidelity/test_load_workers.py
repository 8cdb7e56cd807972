"""Load from several worker processes, merged, against the simulator's ground truth.

N workers must give what one process gives: every request sent once, its tokens equal to what the
simulator wrote, and the steady-state figures as close to the simulator's emit log as one process
gets (same tolerances as test_fidelity). Failures across workers (error budget, a worker killed,
an early stop) end the whole run as in one process. Busy-box safe: plumbing faults miss by far more.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.serving.load import LoadResult
from pytest_deepseek.serving.load_split import split_load
from pytest_deepseek.serving.load_workers import LocalLink, WorkerJob, run_with_workers
from pytest_deepseek.serving.measure import LoadRun, RequestPlan, ServingTarget, drive, load_shape
from pytest_deepseek.serving.metrics import compute_run_metrics
from pytest_deepseek.serving.records import RequestRecord, RequestSpec
from pytest_deepseek.serving.spec import Scenario
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.truth import read_truth
from pytest_deepseek.testing.fidelity import compare

from .test_fidelity import THROUGHPUT_PCT, TTFT_P50_MS


def _run(base_url: str, model: str, scenario: Scenario, prompts: int, *, workers: int, warmup: int = 0,
         should_stop: Any = None, make_link: Callable[[WorkerJob], Any] = LocalLink) -> tuple[LoadResult, list[RequestRecord]]:
    specs = [RequestSpec(index=i, api="completions", model=model, prompt="hello " * 32,
                         max_tokens=scenario.output_len or 16, warmup=i < warmup) for i in range(prompts + warmup)]
    plan = RequestPlan(specs[:warmup], specs[warmup:], {})
    run = LoadRun(scenario, ServingTarget(base_url=base_url, model=model, api="completions", simulated=True), plan,
                  request_prefix=f"w{workers}", should_stop=should_stop, check_every=10)
    seen: list[RequestRecord] = []
    if workers == 1:
        return asyncio.run(drive(run, seen.append)), seen
    parts = split_load(load_shape(scenario), plan.warmup, plan.measured, workers)
    return run_with_workers(run, parts, seen.append, make_link=make_link), seen


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_two_workers_measure_what_one_process_measures(tmp_path: Path, mode: str) -> None:
    if mode == "closed":
        scenario = Scenario(input_len=32, output_len=48, concurrency=8, num_prompts=48, warmup=2)
    else:
        scenario = Scenario(input_len=32, output_len=48, request_rate=40.0, num_prompts=64, warmup=2)
    reports = {}
    for workers in (1, 2):
        truth_path = tmp_path / f"truth{workers}.jsonl"
        with start_sim("sim://fast?step_base_ms=10&step_per_seq_ms=0", truth_path=truth_path) as sim:
            load, seen = _run(sim.base_url, sim.model, scenario, scenario.num_prompts or 0, workers=workers, warmup=2)
        truth = read_truth(truth_path)
        measured = [r for r in load.records if not r.warmup]
        assert sorted(r.index for r in measured) == list(range(2, 2 + (scenario.num_prompts or 0)))
        assert len(seen) == len(load.records)  # every record reached the sink once
        assert all(r.success for r in load.records)
        for record in load.records:  # each request's tokens are the simulator's
            assert record.completion_tokens == truth[record.request_id].completion_tokens
        warm_sends = [truth[r.request_id].arrival_ns for r in load.records if r.warmup]
        assert max(warm_sends) < min(r.t_send for r in measured)  # warm-up before the measured phase
        metrics = compute_run_metrics(load.records, load.timeline)
        assert metrics.window_start_ns is not None and metrics.window_end_ns is not None
        report = compare(load.records, truth, window=(metrics.window_start_ns, metrics.window_end_ns),
                         measured_throughput=metrics.output_throughput)
        assert report.unmatched == 0
        assert abs(report.throughput_error_pct or 0) <= THROUGHPUT_PCT, (workers, report)
        assert 0 <= (report.ttft_error_ms_p50 or 0) <= TTFT_P50_MS, (workers, report)
        reports[workers] = (report, load.health)
    two = reports[2][1]
    assert len(two.workers) == 2 and all(w.wall_s > 0 for w in two.workers)
    if mode == "closed":
        assert two.target_concurrency == 8
        assert two.mean_in_flight > 4  # the merged in-flight level, not one worker's
    else:
        assert two.achieved_rate is not None and two.achieved_rate > 20


def test_failures_of_every_worker_count_against_one_error_budget(tmp_path: Path) -> None:
    scenario = Scenario(input_len=32, output_len=16, concurrency=4, num_prompts=200, error_budget=0.02)
    with start_sim("sim://fast?step_base_ms=5&fault_http_500=every:5", truth_path=tmp_path / "t.jsonl") as sim:
        load, _ = _run(sim.base_url, sim.model, scenario, 200, workers=2)
    assert load.cut_short is not None and "exceed the error budget" in load.cut_short
    failed = [r for r in load.records if r.error_kind == "http_5xx"]
    assert 4 < len(failed) < 40  # cut soon after 2% of 200, summed over both workers
    assert len(load.records) < 200


class _KilledAfterFirstRecords(LocalLink):
    """A local worker whose process is killed once it has sent some records."""

    def start(self, deliver: Callable[[int, tuple[Any, ...]], None]) -> None:
        fired = threading.Event()

        def watching(index: int, message: tuple[Any, ...]) -> None:
            deliver(index, message)
            if message[0] == "records" and not fired.is_set() and any(not r.warmup for r in message[1]):
                fired.set()
                os.kill(self._process.pid or 0, signal.SIGKILL)

        super().start(watching if self.index == 1 else deliver)


def test_a_worker_killed_mid_run_cuts_the_run_and_keeps_the_others_records(tmp_path: Path) -> None:
    scenario = Scenario(input_len=32, output_len=32, concurrency=4, num_prompts=400)
    with start_sim("sim://fast?step_base_ms=5", truth_path=tmp_path / "t.jsonl") as sim:
        load, _ = _run(sim.base_url, sim.model, scenario, 400, workers=2, make_link=_KilledAfterFirstRecords)
    assert load.cut_short is not None and "load worker" in load.cut_short and "failed while measuring" in load.cut_short
    assert "exit code -9" in load.cut_short
    assert any(r.success for r in load.records)
    assert len(load.records) < 400


def test_an_early_stop_decided_over_both_workers_stops_both(tmp_path: Path) -> None:
    looks: list[int] = []

    def decide(records: Any, timeline: Any) -> bool:
        looks.append(len(records))
        return True

    scenario = Scenario(input_len=32, output_len=32, concurrency=4, num_prompts=400, early_stop=True)
    with start_sim("sim://fast?step_base_ms=5", truth_path=tmp_path / "t.jsonl") as sim:
        load, _ = _run(sim.base_url, sim.model, scenario, 400, workers=2, should_stop=decide)
    assert load.stopped_early and load.deciding_timeline is not None
    assert looks and looks[0] >= 10
    assert len(load.records) < 200
    assert load.cut_short is None
