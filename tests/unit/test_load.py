"""The load generator with a fake server: pacing, windows, warmup, early stop, client health."""

import asyncio
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
