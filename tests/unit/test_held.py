"""Held records: the newest in memory up to a budget, older ones spilled and read back in order."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from array import array

import pytest

from pytest_deepseek.serving import held as held_mod
from pytest_deepseek.serving.held import HeldRecords, record_bytes
from pytest_deepseek.serving.load import LoadRunner, LoadShape
from pytest_deepseek.serving.records import RequestRecord, RequestSpec


def record(index: int, tokens: int = 64, warmup: bool = False) -> RequestRecord:
    r = RequestRecord(index=index, request_id=f"run-sim-{index}", api="completions", warmup=warmup,
                      t_send=1_000_000 + index, text="x" * tokens)
    r.event_times = array("q", range(index, index + tokens))
    r.event_tokens = array("i", [1] * tokens)
    r.event_reasoning = array("b", [0] * tokens)
    r.completion_tokens, r.success = tokens, True
    return r


def test_under_the_budget_nothing_is_spilled() -> None:
    held = HeldRecords()
    records = [record(i) for i in range(50)]
    held.extend(records)
    assert len(held) == 50 and held.spilled == 0 and list(held) == records
    assert held.memory_bytes == sum(record_bytes(r) for r in records)


def test_over_the_budget_the_oldest_are_spilled_and_read_back_in_order() -> None:
    one = record_bytes(record(0))
    held = HeldRecords(budget_bytes=10 * one)
    records = [record(i) for i in range(1000)]
    for r in records:
        held.append(r)
        assert held.memory_bytes <= 10 * one
    assert len(held) == 1000 and held.spilled >= 990
    back = list(held)
    assert back == records and back[0] is not records[0]  # equal values, read back from the file
    assert [r.index for r in held] == list(range(1000))


def test_a_snapshot_sees_what_was_held_when_it_was_taken() -> None:
    one = record_bytes(record(0))
    held = HeldRecords(budget_bytes=5 * one)
    held.extend([record(i) for i in range(600)])
    view = held.snapshot()
    held.extend([record(i) for i in range(600, 1200)])
    assert [r.index for r in view] == list(range(600))
    assert [r.index for r in held] == list(range(1200))


def test_a_snapshot_reads_back_in_another_thread_while_records_are_added() -> None:
    one = record_bytes(record(0))
    held = HeldRecords(budget_bytes=5 * one)
    held.extend([record(i) for i in range(2000)])
    seen: list[list[int]] = []

    def read(view) -> None:
        seen.append([r.index for r in view])

    readers = [threading.Thread(target=read, args=(held.snapshot(),)) for _ in range(3)]
    for thread in readers:
        thread.start()
    held.extend([record(i) for i in range(2000, 4000)])
    for thread in readers:
        thread.join()
    assert seen == [list(range(2000))] * 3


def fake_send(tokens: int = 8):
    async def send(spec: RequestSpec, t_queued: int, on_start=None) -> RequestRecord:
        r = RequestRecord(index=spec.index, request_id=str(spec.index), api="completions", warmup=spec.warmup,
                          t_queued=t_queued, t_send=time.perf_counter_ns())
        if on_start is not None:
            on_start(r)
        for _ in range(tokens):
            await asyncio.sleep(0.0005)
            r.event_times.append(time.perf_counter_ns())
            r.event_tokens.append(1)
            r.event_reasoning.append(False)
        r.t_first_token, r.t_last_token = r.event_times[0], r.event_times[-1]
        r.t_end, r.completion_tokens, r.success = r.event_times[-1], tokens, True
        return r

    return send


def test_a_load_runner_over_its_budget_judges_and_looks_at_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(held_mod, "MEMORY_BUDGET_BYTES", 3 * record_bytes(record(0, tokens=8)))
    looks: list[list[int]] = []

    def should_stop(records, timeline) -> bool:
        looks.append(sorted(r.index for r in records if r.success))
        return False

    specs = [RequestSpec(index=i, api="completions", model="m", prompt="p", warmup=i < 3) for i in range(203)]
    runner = LoadRunner(fake_send(), LoadShape(mode="closed", concurrency=4), should_stop=should_stop,
                        check_every=50)
    result = asyncio.run(runner.run(specs[:3], specs[3:]))
    assert runner.records.spilled > 150
    assert [r.index for r in result.records][:3] == [0, 1, 2]  # the warm-up first: finishing order
    assert sorted(r.index for r in result.records) == list(range(203))
    assert all(r.success and len(r.event_times) == 8 for r in result.records)
    # Every look saw every measured record finished before it, spilled or not (none of the warm-up).
    assert looks and all(len(seen) >= 50 * (n + 1) and min(seen) >= 3 for n, seen in enumerate(looks))


def test_an_open_loop_keeps_no_finished_request_outside_the_held_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every record spilled at once, nothing else in the runner keeps finished records alive
    while the run goes on (an open loop's finished tasks used to hold theirs to the end)."""
    monkeypatch.setattr(held_mod, "MEMORY_BUDGET_BYTES", 1)
    alive_at: list[int] = []

    def on_record(record: RequestRecord) -> None:
        if record.index == 150:
            gc.collect()
            alive_at.append(sum(1 for o in gc.get_objects() if isinstance(o, RequestRecord)))

    runner = LoadRunner(fake_send(), LoadShape(mode="open", request_rate=100.0, arrival="constant"),
                        on_record=on_record)
    specs = [RequestSpec(index=i, api="completions", model="m", prompt="p") for i in range(200)]
    result = asyncio.run(runner.run([], specs))
    # the one being recorded and the few still in flight; not 150
    assert alive_at and alive_at[0] <= 10, alive_at
    assert len(result.records) == 200 and runner.records.spilled >= 199


def test_a_spill_that_fails_keeps_the_records_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    one = record_bytes(record(0))
    held = HeldRecords(budget_bytes=5 * one)
    held.extend([record(i) for i in range(100)])
    monkeypatch.setattr(held_mod._SpillFile, "append", full)
    held.extend([record(i) for i in range(100, 300)])
    assert held.spill_error is not None and "No space left on device" in held.spill_error
    assert [r.index for r in held] == list(range(300)) and held.spilled < 100
