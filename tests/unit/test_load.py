"""The load generator with a fake server: pacing, windows, warmup, early stop, client health."""

import asyncio
import gc
import math
import time

import pytest

from pytest_deepseek.serving.load import LoadRunner, LoadShape, arrival_offsets
from pytest_deepseek.serving.records import RequestRecord, RequestSpec


def specs(n, warmup=0):
    return [RequestSpec(index=i, api="completions", model="m", prompt="p", warmup=i < warmup) for i in range(n)]


def fake_send(duration_s=0.02, tokens=4, in_flight=None):
    async def send(spec, t_queued, on_start=None):
        t_send = time.perf_counter_ns()
        if in_flight is not None:
            in_flight.append(1)
        record = RequestRecord(index=spec.index, request_id=str(spec.index), api="completions", warmup=spec.warmup,
                               t_queued=t_queued, t_send=t_send)
        if on_start is not None:
            on_start(record)
        step = duration_s / tokens
        for _ in range(tokens):
            await asyncio.sleep(step)
            now = time.perf_counter_ns()
            record.event_times.append(now)
            record.event_tokens.append(1)
        record.t_first_token = record.event_times[0]
        record.t_last_token = record.t_end = record.event_times[-1]
        record.completion_tokens = tokens
        record.success = True
        return record

    return send


def run(runner, warm, measured):
    return asyncio.run(runner.run(warm, measured))


def test_closed_loop_windows_and_concurrency():
    all_specs = specs(24, warmup=4)
    runner = LoadRunner(fake_send(0.05), LoadShape(mode="closed", concurrency=4))
    result = run(runner, all_specs[:4], all_specs[4:])
    measured = [r for r in result.records if not r.warmup]
    assert len(result.records) == 24 and len(measured) == 20
    assert all(type(r.event_times).__name__ == "array" for r in result.records)  # kept compact for judging
    tl = result.timeline
    first_sends = sorted(r.t_send for r in measured)[:4]
    assert tl.t_start == first_sends[0]
    assert first_sends[2] <= tl.t_load_reached <= first_sends[3]
    assert tl.t_load_reached < tl.t_drain_start < tl.t_end
    # The drain starts when the queue is empty: after the last request was sent.
    assert tl.t_drain_start >= max(r.t_send for r in measured)
    assert tl.peak_concurrency == 4
    assert 3.0 < result.health.mean_in_flight <= 4.0
    # Warmup finished before any measured request was sent.
    assert max(r.t_end for r in result.records if r.warmup) <= tl.t_start


def test_open_loop_follows_the_schedule():
    runner = LoadRunner(fake_send(0.02), LoadShape(mode="open", request_rate=50, arrival="constant"))
    result = run(runner, [], specs(20))
    sends = sorted(r.t_send for r in result.records)
    gaps_ms = [(b - a) / 1e6 for a, b in zip(sends, sends[1:])]
    assert 15 < sum(gaps_ms) / len(gaps_ms) < 25
    assert all(r.t_scheduled is not None and r.t_send >= r.t_scheduled for r in result.records)
    assert result.health.schedule_lag_ms and max(result.health.schedule_lag_ms) < 50
    assert result.timeline.t_load_reached is not None and result.timeline.t_drain_start is not None


def test_open_loop_cap_limits_in_flight():
    runner = LoadRunner(fake_send(0.05), LoadShape(mode="open", request_rate=math.inf, max_concurrency=3))
    result = run(runner, [], specs(9))
    assert result.timeline.peak_concurrency == 3
    # Everything at once: no refill, so the run window is the only window.
    assert result.timeline.t_load_reached is None and result.timeline.t_drain_start is None


def test_batch_mode_reports_batch_latency():
    runner = LoadRunner(fake_send(0.03), LoadShape(mode="batch", batch_size=4, num_iters=3))
    result = run(runner, [], specs(12))
    assert len(result.records) == 12 and len(result.batch_latencies_ms) == 3
    assert all(25 < lat < 200 for lat in result.batch_latencies_ms)


def test_early_stop_ends_the_run():
    calls = []
    in_flight_seen = []

    def should_stop(records, timeline):
        done = [r for r in records if r.success]
        calls.append(len(done))
        # Requests still in flight come along, marked neither completed nor failed.
        in_flight_seen.append([r for r in records if not r.success])
        assert all(r.error_kind is None for r in in_flight_seen[-1])
        return len(done) >= 10

    runner = LoadRunner(fake_send(0.01), LoadShape(mode="closed", concurrency=2), should_stop=should_stop, check_every=5)
    result = run(runner, [], specs(100))
    assert result.stopped_early
    assert 10 <= len(result.records) <= 12 and calls[:2] == [5, 10]
    assert any(in_flight_seen)


def test_duration_stop():
    runner = LoadRunner(fake_send(0.02), LoadShape(mode="closed", concurrency=2, duration_s=0.2))
    t0 = time.perf_counter()
    result = run(runner, [], specs(1000))
    assert time.perf_counter() - t0 < 1.0 and 10 <= len(result.records) < 40


@pytest.mark.parametrize("arrival", ["poisson", "gamma", "constant"])
def test_arrival_schedules_have_the_target_rate(arrival):
    offsets = arrival_offsets(4001, 10.0, arrival, 0.5, seed=7)
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    assert offsets[-1] / 4000 == pytest.approx(0.1, rel=0.08)
    assert arrival_offsets(3, math.inf, arrival, 1.0, 0) == [0.0, 0.0, 0.0]


def flaky_send(failing, slow_s=5.0, fast_s=0.01):
    """Requests whose index is in `failing` fail fast; the others stream slowly (one token per 10 ms)."""
    async def send(spec, t_queued, on_start=None):
        record = RequestRecord(index=spec.index, request_id=str(spec.index), api="completions", warmup=spec.warmup,
                               t_queued=t_queued, t_send=time.perf_counter_ns())
        if on_start is not None:
            on_start(record)
        if spec.index in failing:
            await asyncio.sleep(fast_s)
            record.error_kind, record.error_detail, record.t_end = "http_5xx", "HTTP 503", time.perf_counter_ns()
            return record
        t_stop = time.perf_counter() + slow_s
        while time.perf_counter() < t_stop:
            record.event_times.append(time.perf_counter_ns())
            record.event_tokens.append(1)
            await asyncio.sleep(0.01)
        record.t_end = record.event_times[-1]
        record.success = True
        return record

    return send


def test_a_blown_error_budget_cuts_the_run():
    # 100 planned with a 2% budget: the third failure can no longer be made up for.
    written = []
    runner = LoadRunner(flaky_send(failing={0, 1, 2}), LoadShape(mode="closed", concurrency=8),
                        on_record=written.append, error_budget=0.02)
    t0 = time.perf_counter()
    result = run(runner, [], specs(100))
    assert time.perf_counter() - t0 < 3.0  # the slow requests in flight were cancelled, not awaited
    failed = [r for r in result.records if r.error_kind is not None]
    in_flight = [r for r in result.records if not r.success and r.error_kind is None]
    assert len(failed) == 3 and not any(r.success for r in result.records)
    # In flight when cut: the five others of the first wave and the two sent after the first failures.
    assert sorted(r.index for r in in_flight) == [3, 4, 5, 6, 7, 8, 9]
    assert all(r.event_times and r.t_send and r.t_end is None for r in in_flight)  # kept, with their tokens
    assert written == result.records  # every record reaches the sink, the cut ones too
    assert result.cut_short and result.cut_short.startswith(
        "stopped: 3 failed requests exceed the error budget (2.00% of 100 planned) after ")
    assert result.cut_short.endswith("s: 3 of 100 requests measured")
    assert not result.stopped_early


def test_failures_within_the_budget_do_not_cut():
    runner = LoadRunner(flaky_send(failing={3, 7}, slow_s=0.02), LoadShape(mode="closed", concurrency=4),
                        error_budget=0.1)
    result = run(runner, [], specs(20))
    assert len(result.records) == 20 and result.cut_short is None
    assert sum(r.error_kind is not None for r in result.records) == 2


@pytest.mark.parametrize("shape", [LoadShape(mode="closed", concurrency=3),
                                   LoadShape(mode="open", request_rate=0.5, arrival="constant"),
                                   LoadShape(mode="batch", batch_size=3, num_iters=4)],
                         ids=["closed", "open", "batch"])
def test_a_cut_stops_sending_and_keeps_requests_in_flight(shape):
    """A session deadline in the middle of slow requests (and, open loop, of a long wait for the next send)."""
    runner = LoadRunner(flaky_send(failing=set(), slow_s=10.0), shape)

    async def main():
        asyncio.get_running_loop().call_later(0.3, runner.cut, "session deadline of 1 s reached")
        return await runner.run([], specs(12))

    t0 = time.perf_counter()
    result = asyncio.run(main())
    assert time.perf_counter() - t0 < 3.0
    assert result.records and all(not r.success and r.error_kind is None for r in result.records)
    assert len(result.records) == {"closed": 3, "open": 1, "batch": 3}[shape.mode]
    assert result.cut_short and result.cut_short.startswith("session deadline of 1 s reached after 0.")
    assert result.cut_short.endswith(": 0 of 12 requests measured")


def test_a_cut_during_warmup_sends_nothing_measured():
    runner = LoadRunner(flaky_send(failing=set(), slow_s=10.0), LoadShape(mode="closed", concurrency=2))

    async def main():
        asyncio.get_running_loop().call_later(0.2, runner.cut, "session deadline of 1 s reached")
        return await runner.run(specs(2, warmup=2), specs(10)[2:])

    result = asyncio.run(main())
    assert [r.warmup for r in result.records] == [True, True] and not result.timeline.t_start


def test_a_cancellation_from_outside_still_cancels_the_run():
    runner = LoadRunner(flaky_send(failing=set(), slow_s=10.0), LoadShape(mode="closed", concurrency=2))

    async def main():
        task = asyncio.ensure_future(runner.run([], specs(4)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_kept_record_is_compact_and_judged_as_before() -> None:
    """Kept for judging, a record's token events are typed arrays with the same values; its JSON is
    unchanged."""
    from array import array

    from pytest_deepseek.serving.records import RequestRecord

    record = RequestRecord(index=0, request_id="r-0", api="completions", t_send=5, success=True,
                           event_times=[10, 20, 35], event_tokens=[1, 2, 1], event_reasoning=[True, False, False],
                           completion_tokens=4)
    before = record.to_json_dict()
    record.compact()
    assert isinstance(record.event_times, array) and isinstance(record.event_reasoning, array)
    assert list(record.event_times) == [10, 20, 35] and record.n_tokens == 4
    assert record.to_json_dict() == before
    assert RequestRecord.from_json_dict(record.to_json_dict()).event_reasoning == [True, False, False]
    record.compact()  # twice is once
    assert list(record.event_tokens) == [1, 2, 1]


def test_objects_alive_before_the_measured_phase_are_out_of_the_collectors_walks_during_it():
    frozen_during: list[tuple[bool, int]] = []
    inner = fake_send(0.01)
    before = gc.get_freeze_count()
    all_specs = specs(10, warmup=2)

    async def two_overlapping_runs() -> int:
        slow_measuring, fast_done = asyncio.Event(), asyncio.Event()

        async def slow_send(spec, t_queued, on_start=None):
            frozen_during.append((spec.warmup, gc.get_freeze_count()))
            if not spec.warmup:
                slow_measuring.set()
                await fast_done.wait()  # the fast run starts and ends inside this one's measured phase
            return await inner(spec, t_queued, on_start)

        slow = LoadRunner(slow_send, LoadShape(mode="closed", concurrency=2))
        fast = LoadRunner(inner, LoadShape(mode="closed", concurrency=2))
        first = asyncio.ensure_future(slow.run(all_specs[:2], all_specs[2:]))
        await slow_measuring.wait()
        await fast.run([], all_specs[2:4])
        frozen_after_fast = gc.get_freeze_count()
        fast_done.set()
        await first
        return frozen_after_fast

    frozen_after_fast = asyncio.run(two_overlapping_runs())
    warm_counts = [count for warmup, count in frozen_during if warmup]
    measured_counts = [count for warmup, count in frozen_during if not warmup]
    assert warm_counts == [before, before]  # warm-up requests run with the collector as it was
    assert len(measured_counts) == 8 and min(measured_counts) > before  # the prompt plan, pytest, ... frozen
    assert frozen_after_fast > before  # the freeze outlives a phase that ends inside another
    assert gc.get_freeze_count() == before  # lifted when the last measured phase ended
