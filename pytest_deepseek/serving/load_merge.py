"""Put the load of several worker processes back together as if one client had sent it.

Pure computation over what each worker reports: its in-flight log, its phase boundaries and its
own health. Times are perf_counter_ns values on the coordinator's clock (workers on another machine
are shifted by their measured clock offset first, `shift_record` / `shift_timeline`).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from array import array
from collections.abc import Iterable, Sequence

from .records import RequestRecord, RunTimeline

InFlightLog = Sequence[tuple[int, int]]  # (time, requests in flight from then on), in time order

_RECORD_TIMES = ("t_scheduled", "t_queued", "t_send", "t_headers", "t_first_token", "t_first_answer",
                 "t_last_token", "t_end")
_TIMELINE_TIMES = ("t_start", "t_load_reached", "t_drain_start", "t_end")


def mean_level(log: InFlightLog, start_ns: int, end_ns: int) -> float:
    """Time-average of the level over [start_ns, end_ns] (0 before the first change)."""
    if end_ns <= start_ns:
        return 0.0
    area = 0.0
    level = 0
    previous = start_ns
    for t, count in log:
        if t > start_ns:
            area += level * (min(t, end_ns) - previous)
            previous = min(t, end_ns)
        if t >= end_ns:
            break
        level = count
    area += level * (end_ns - previous) if previous < end_ns else 0.0
    return area / (end_ns - start_ns)


def achieved_concurrency(log: InFlightLog, timeline: RunTimeline) -> float:
    """Mean requests in flight over the steady window, else over the whole measured run."""
    if timeline.t_load_reached is not None and timeline.t_drain_start is not None \
            and timeline.t_drain_start > timeline.t_load_reached:
        return mean_level(log, timeline.t_load_reached, timeline.t_drain_start)
    if timeline.t_start:
        return mean_level(log, timeline.t_start, timeline.t_end)
    return 0.0


def has_steady_window(mode: str, request_rate: float | None) -> bool:
    """False for the modes that never refill (a batch, an open loop sending all at once): their run
    window is the only meaningful window."""
    return not (mode == "batch" or (mode == "open" and math.isinf(request_rate or 0)))


def merge_levels(logs: Iterable[InFlightLog]) -> list[tuple[int, int]]:
    """One log whose level is the sum of the logs' levels at every instant."""
    tagged = [[(t, i, count) for t, count in log] for i, log in enumerate(logs)]
    levels = [0] * len(tagged)
    total = 0
    merged: list[tuple[int, int]] = []
    for t, i, count in heapq.merge(*tagged):
        total += count - levels[i]
        levels[i] = count
        merged.append((t, total))
    return merged


def peak_level(log: InFlightLog) -> int:
    """The highest level the log reaches."""
    return max((count for _, count in log), default=0)


def shift_record(record: RequestRecord, offset_ns: int) -> RequestRecord:
    """`record` with every time moved by `offset_ns` (durations within it unchanged)."""
    if offset_ns == 0:
        return record
    for name in _RECORD_TIMES:
        value = getattr(record, name)
        if value:
            setattr(record, name, value + offset_ns)
    shifted = [t + offset_ns for t in record.event_times]
    record.event_times = array("q", shifted) if isinstance(record.event_times, array) else shifted
    return record


def shift_timeline(timeline: RunTimeline, offset_ns: int) -> RunTimeline:
    """`timeline` with every boundary moved by `offset_ns`."""
    changes = {name: getattr(timeline, name) + offset_ns for name in _TIMELINE_TIMES if getattr(timeline, name)}
    return dataclasses.replace(timeline, **changes)


def shift_log(log: InFlightLog, offset_ns: int) -> list[tuple[int, int]]:
    """`log` with every time moved by `offset_ns`."""
    return [(t + offset_ns, count) for t, count in log]


def merge_timelines(mode: str, parts: Sequence[RunTimeline], peak: int) -> RunTimeline:
    """The run's phase boundaries from each worker's.

    Closed loop: the load is reached when the last worker has filled its slots, and draining starts
    when the first worker can no longer refill one. Open loop: the schedule is under way from the
    first worker's first arrival and draining starts after the last worker's last arrival. A
    boundary any worker lacks (None) is lacking for the run."""
    started = [p.t_start for p in parts if p.t_start]
    reached = [p.t_load_reached for p in parts]
    drains = [p.t_drain_start for p in parts]
    load_reached: int | None = None
    drain_start: int | None = None
    if parts and all(t is not None for t in reached):
        known = [t for t in reached if t is not None]
        load_reached = max(known) if mode == "closed" else min(known)
    if parts and all(t is not None for t in drains):
        known = [t for t in drains if t is not None]
        drain_start = min(known) if mode == "closed" else max(known)
    first = parts[0] if parts else RunTimeline(mode=mode, t_start=0)  # type: ignore[arg-type]
    return dataclasses.replace(
        first, t_start=min(started, default=0), t_load_reached=load_reached, t_drain_start=drain_start,
        t_end=max((p.t_end for p in parts), default=0), peak_concurrency=peak)


def achieved_rate(records: Sequence[RequestRecord]) -> float | None:
    """Requests sent per second between the first and the last measured send (open loop)."""
    sends = sorted(r.t_send for r in records if r.t_send and not r.warmup)
    if len(sends) > 1 and sends[-1] > sends[0]:
        return (len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9)
    return None


def schedule_rate(offsets: Sequence[float], launched: int) -> float | None:
    """The rate the first `launched` arrivals of the schedule ask for (None: fewer than two)."""
    if launched > 1 and offsets[launched - 1] > 0:
        return (launched - 1) / offsets[launched - 1]
    return None
