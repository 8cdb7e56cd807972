"""Sharing a scenario's load among processes and putting it back together (pure functions)."""

from __future__ import annotations

import math
from array import array

import pytest

from pytest_deepseek.serving.load import LoadShape, arrival_offsets
from pytest_deepseek.serving.load_merge import (mean_level, merge_levels, merge_timelines, peak_level,
                                                schedule_rate, shift_record, shift_timeline)
from pytest_deepseek.serving.load_split import dealt, global_schedule, split_load, worker_count
from pytest_deepseek.serving.records import RequestRecord, RequestSpec, RunTimeline


def _specs(n: int, warmup: bool = False) -> list[RequestSpec]:
    return [RequestSpec(index=i, api="completions", model="m", prompt="p", max_tokens=4, warmup=warmup)
            for i in range(n)]


@pytest.mark.parametrize("total,parts", [(0, 3), (7, 3), (64, 2), (5, 8)])
def test_dealt_out_shares_add_up_and_differ_by_at_most_one(total: int, parts: int) -> None:
    shares = [dealt(total, parts, i) for i in range(parts)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_worker_count_never_exceeds_the_clients_nor_shares_a_batch() -> None:
    closed = LoadShape(mode="closed", concurrency=3)
    assert worker_count(8, closed, 100, cpus=16) == 3
    assert worker_count(None, closed, 100, cpus=2) == 2
    assert worker_count(None, LoadShape(mode="closed", concurrency=64), 100, cpus=16) == 16
    assert worker_count(4, LoadShape(mode="batch", batch_size=8), 100, cpus=16) == 1
    assert worker_count(4, LoadShape(mode="open", request_rate=5.0), 3, cpus=16) == 3
    assert worker_count(4, LoadShape(mode="open", request_rate=5.0, max_concurrency=2), 100, cpus=16) == 2
    assert worker_count(4, closed, 1, cpus=16) == 1


def test_closed_loop_parts_split_the_clients_and_every_request_once() -> None:
    shape = LoadShape(mode="closed", concurrency=5)
    parts = split_load(shape, _specs(3, warmup=True), _specs(23), 2)
    assert [p.shape.concurrency for p in parts] == [3, 2]
    indices = sorted(s.index for p in parts for s in p.measured)
    assert indices == list(range(23))
    # requests in proportion to the clients: 3 of every 5
    assert [len(p.measured) for p in parts] == [14, 9]
    assert sorted(s.index for p in parts for s in p.warmup) == [0, 1, 2]
    assert all(p.schedule is None for p in parts)


@pytest.mark.parametrize("arrival", ["poisson", "gamma", "constant"])
def test_open_loop_parts_merge_to_the_one_process_schedule(arrival: str) -> None:
    shape = LoadShape(mode="open", request_rate=12.5, arrival=arrival, burstiness=0.5, max_concurrency=5, seed=7)
    specs = _specs(101)
    parts = split_load(shape, [], specs, 3)
    merged = sorted((offset, spec.index) for p in parts for offset, spec in zip(p.schedule or (), p.measured))
    expected = arrival_offsets(101, 12.5, arrival, 0.5, 7)
    assert [offset for offset, _ in merged] == sorted(expected)
    assert {index: offset for offset, index in merged} == dict(enumerate(expected))
    assert [p.shape.max_concurrency for p in parts] == [2, 2, 1]
    assert global_schedule(shape, 101) == expected


def test_all_at_once_parts_send_everything_at_the_start() -> None:
    parts = split_load(LoadShape(mode="open", request_rate=math.inf), [], _specs(10), 4)
    assert [len(p.measured) for p in parts] == [3, 3, 2, 2]
    assert all(offset == 0.0 for p in parts for offset in p.schedule or ())


def test_merged_levels_are_the_sum_at_every_instant() -> None:
    a = [(10, 1), (20, 2), (40, 0)]
    b = [(15, 1), (30, 0)]
    merged = merge_levels([a, b])
    assert merged == [(10, 1), (15, 2), (20, 3), (30, 2), (40, 0)]
    assert peak_level(merged) == 3
    # mean over [10, 40]: 1*5 + 2*5 + 3*10 + 2*10 = 65 over 30
    assert mean_level(merged, 10, 40) == pytest.approx(65 / 30)
    assert mean_level(a, 10, 40) + mean_level(b, 10, 40) == pytest.approx(mean_level(merged, 10, 40))


def test_closed_loop_window_runs_from_the_last_full_worker_to_the_first_draining_one() -> None:
    parts = [RunTimeline(mode="closed", t_start=5, t_load_reached=10, t_drain_start=100, t_end=120),
             RunTimeline(mode="closed", t_start=4, t_load_reached=12, t_drain_start=90, t_end=130)]
    merged = merge_timelines("closed", parts, peak=7)
    assert (merged.t_start, merged.t_load_reached, merged.t_drain_start, merged.t_end) == (4, 12, 90, 130)
    assert merged.peak_concurrency == 7


def test_open_loop_window_runs_from_the_first_arrival_to_after_the_last() -> None:
    parts = [RunTimeline(mode="open", t_start=5, t_load_reached=5, t_drain_start=100, t_end=120),
             RunTimeline(mode="open", t_start=8, t_load_reached=8, t_drain_start=110, t_end=115)]
    merged = merge_timelines("open", parts, peak=3)
    assert (merged.t_load_reached, merged.t_drain_start) == (5, 110)


def test_a_boundary_one_worker_lacks_is_lacking_for_the_run() -> None:
    parts = [RunTimeline(mode="closed", t_start=5, t_load_reached=10, t_drain_start=100, t_end=120),
             RunTimeline(mode="closed", t_start=4, t_load_reached=None, t_drain_start=None, t_end=130)]
    merged = merge_timelines("closed", parts, peak=1)
    assert merged.t_load_reached is None and merged.t_drain_start is None


def test_shifting_a_record_keeps_its_durations() -> None:
    record = RequestRecord(index=0, request_id="r", api="completions", t_queued=100, t_send=110, t_first_token=150, t_last_token=190,
                           t_end=200, event_times=[150, 170, 190], event_tokens=[1, 1, 1],
                           event_reasoning=[False] * 3, success=True)
    record.compact()
    shifted = shift_record(record, -1000)
    assert (shifted.t_send, shifted.t_first_token, shifted.t_end) == (-890, -850, -800)
    assert isinstance(shifted.event_times, array) and list(shifted.event_times) == [-850, -830, -810]
    assert shifted.t_headers is None  # an unset time stays unset
    timeline = shift_timeline(RunTimeline(mode="closed", t_start=100, t_load_reached=None, t_end=300), 50)
    assert (timeline.t_start, timeline.t_load_reached, timeline.t_end) == (150, None, 350)


def test_schedule_rate_is_the_rate_the_launched_arrivals_ask_for() -> None:
    assert schedule_rate([0.0, 0.5, 1.0, 1.5], 4) == pytest.approx(2.0)
    assert schedule_rate([0.0, 0.5], 1) is None
