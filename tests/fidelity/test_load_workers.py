"""Load from several worker processes, merged, against the simulator's ground truth.

N workers must give what one process gives: every request sent once, its tokens equal to what the
simulator wrote, and the steady-state figures as close to the simulator's emit log as one process
gets (same tolerances as test_fidelity). Failures across workers (error budget, a worker killed,
an early stop) end the whole run as in one process. Busy-box safe: plumbing faults miss by far more.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.serving import held as held_mod
from pytest_deepseek.serving.load import LoadResult
from pytest_deepseek.serving.load_merge import shift_log, shift_record, shift_timeline
from pytest_deepseek.serving.load_split import LoadPart, split_load
from pytest_deepseek.serving.load_workers import LocalLink, WorkerJob, run_with_workers, serve_job
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


class _ThreadLink:
    """A worker on a thread of this process whose clock reads `clock_offset_ns` ahead of ours: every
    time it sends is moved forward by the offset and the start time it gets back (a worker on
    another machine, as the coordinator sees it)."""

    def __init__(self, job: WorkerJob, offset_ns: int) -> None:
        self.index, self.clock_offset_ns, self.where = job.part.index, offset_ns, f"thread {job.part.index}"
        self._job = job
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[tuple[Any, ...]] | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deliver: Callable[[int, tuple[Any, ...]], None]) -> None:
        def emit(message: tuple[Any, ...]) -> None:
            deliver(self.index, _ahead(message, self.clock_offset_ns))

        async def main() -> None:
            self._loop, self._inbox = asyncio.get_running_loop(), asyncio.Queue()
            self._ready.set()
            await serve_job(self._job, self._inbox, emit)

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def send(self, message: tuple[Any, ...]) -> None:
        """Never raises (the link protocol): a worker that ended meanwhile misses the message."""
        assert self._loop is not None and self._inbox is not None
        # the start time comes in the worker's clock (ours + offset); it reads it back on ours
        moved = ("go", message[1] - self.clock_offset_ns) if message[0] == "go" else message
        try:
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, moved)
        except RuntimeError:  # its loop has closed: the worker ended
            pass

    def close(self) -> None:
        assert self._thread is not None
        self._thread.join(30)


def _ahead(message: tuple[Any, ...], offset: int) -> tuple[Any, ...]:
    """`message` with its times as a clock `offset` ahead of ours reads them."""
    kind = message[0]
    if kind == "records":
        return (kind, [shift_record(copy.copy(r), offset) for r in message[1]])
    if kind == "in_flight":
        return (kind, [shift_record(copy.copy(r), offset) for r in message[1]], shift_timeline(message[2], offset),
                message[3] + offset)
    if kind == "done":
        outcome = copy.copy(message[1])
        outcome.timeline = shift_timeline(outcome.timeline, offset)
        outcome.in_flight_log = shift_log(outcome.in_flight_log, offset)
        return (kind, outcome)
    return message


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_workers_on_other_clocks_are_put_on_ours_and_looks_see_every_worker(
        tmp_path: Path, spill: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offsets of +1000 s and -500 s: every record, window and in-flight level lands back on this
    clock (checked against the simulator's own arrival times), and every look sees the records of
    a worker that has already ended; the same when the held records go to a spill file at once."""
    if spill:
        monkeypatch.setattr(held_mod, "MEMORY_BUDGET_BYTES", 1)
    snapshots: list[set[int]] = []

    def decide(records: Any, timeline: Any) -> bool:
        snapshots.append({r.index for r in records})
        assert timeline.t_load_reached <= timeline.t_drain_start
        return False

    scenario = Scenario(input_len=32, output_len=16, concurrency=4, num_prompts=64)
    offsets = {0: 10**12, 1: -5 * 10**11}
    with start_sim("sim://fast?step_base_ms=5", truth_path=tmp_path / "t.jsonl") as sim:
        specs = [RequestSpec(index=i, api="completions", model=sim.model, prompt="hello " * 32, max_tokens=16)
                 for i in range(64)]
        run = LoadRun(scenario, ServingTarget(base_url=sim.base_url, model=sim.model, api="completions"),
                      RequestPlan([], specs, {}), request_prefix="clock", should_stop=decide, check_every=8)
        shape = load_shape(scenario)
        parts = [LoadPart(0, (), tuple(specs[:4]), dataclasses.replace(shape, concurrency=1)),
                 LoadPart(1, (), tuple(specs[4:]), dataclasses.replace(shape, concurrency=3))]
        load = run_with_workers(run, parts, lambda record: None,
                                make_link=lambda job: _ThreadLink(job, offsets[job.part.index]))
    truth = read_truth(tmp_path / "t.jsonl")
    assert len(load.records) == 64 and all(r.success for r in load.records)
    for record in load.records:  # the client sent before the server received, within a second
        arrival = truth[record.request_id].arrival_ns
        assert record.t_send <= arrival < record.t_send + 10**9
        assert record.t_send < record.t_first_token <= record.t_end
    timeline = load.timeline
    sends = [r.t_send for r in load.records]
    assert min(sends) == timeline.t_start and timeline.t_end >= max(sends)
    assert timeline.t_load_reached is not None and timeline.t_drain_start is not None
    assert timeline.t_start <= timeline.t_load_reached < timeline.t_drain_start <= timeline.t_end
    assert 1.5 < load.health.mean_in_flight <= 4.0 and timeline.peak_concurrency == 4
    assert snapshots, "no look was taken"
    assert {0, 1, 2, 3} <= snapshots[-1]  # the first worker ended long before: its records are in the look


@pytest.mark.usefixtures("full_disk")
def test_a_spill_that_fails_in_workers_and_coordinator_is_a_warning_of_each(tmp_path: Path) -> None:
    """A full disk under every held-records spill: each worker's warning reaches the merged result,
    named by worker, beside the coordinator's own, and no record is lost."""
    scenario = Scenario(input_len=32, output_len=8, concurrency=4, num_prompts=32)
    with start_sim("sim://fast?step_base_ms=5", truth_path=tmp_path / "t.jsonl") as sim:
        specs = [RequestSpec(index=i, api="completions", model=sim.model, prompt="hello " * 32, max_tokens=8)
                 for i in range(32)]
        run = LoadRun(scenario, ServingTarget(base_url=sim.base_url, model=sim.model, api="completions"),
                      RequestPlan([], specs, {}), request_prefix="spill")
        load = run_with_workers(run, split_load(load_shape(scenario), [], specs, 2), lambda record: None,
                                make_link=lambda job: _ThreadLink(job, 0))
    assert sorted(r.index for r in load.records) == list(range(32)) and all(r.success for r in load.records)
    coordinator, *workers = load.warnings
    assert "No space left on device" in coordinator and not coordinator.startswith("load worker")
    assert [w.split(":")[0] for w in workers] == ["load worker 0", "load worker 1"]
    assert all("No space left on device" in w for w in workers)


class _Unpicklable:
    """A tokenizer that cannot be sent to another process (it holds a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        return [0] * len(text.split())


def test_workers_that_cannot_start_end_the_run_with_a_problem_not_a_crash() -> None:
    scenario = Scenario(input_len=32, output_len=16, concurrency=2, num_prompts=4)
    specs = [RequestSpec(index=i, api="completions", model="m", prompt="hello", max_tokens=4) for i in range(4)]
    run = LoadRun(scenario, ServingTarget(base_url="http://127.0.0.1:9/v1", model="m", api="completions"),
                  RequestPlan([], specs, {}), request_prefix="x", tokenizer=_Unpicklable())  # type: ignore[arg-type]
    started = time.monotonic()
    load = run_with_workers(run, split_load(load_shape(scenario), [], specs, 2), lambda record: None)
    assert load.cut_short is not None and "could not start" in load.cut_short and "pickle" in load.cut_short
    assert load.records == [] and time.monotonic() - started < 30
