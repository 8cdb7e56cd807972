"""Share one scenario's load among worker processes (pure: what each worker sends, and how).

Closed loop: the clients are dealt out (worker i gets every N-th client slot) and each request goes
to the worker owning the slot it would have used in one process. Open loop: the global arrival
schedule is drawn once and its arrivals dealt out in turn, each keeping its offset from the common
start, so the merged arrivals are exactly the one-process schedule; a `max_concurrency` cap is
shared out the same way. Warm-up requests are dealt out in turn so that every worker's connections
are warm.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .load import LoadShape, arrival_offsets
from .records import RequestSpec

MODES_SHARED = ("closed", "open")  # batch latency is one process's figure


@dataclass(frozen=True)
class LoadPart:
    """One worker's part of the load: its requests, pacing and (open loop) send offsets."""

    index: int
    warmup: tuple[RequestSpec, ...]
    measured: tuple[RequestSpec, ...]
    shape: LoadShape
    schedule: tuple[float, ...] | None = None


def dealt(total: int, parts: int, index: int) -> int:
    """How many of `total` things part `index` of `parts` gets when they are dealt out in turn."""
    return total // parts + (1 if index < total % parts else 0)


def worker_count(requested: int | None, shape: LoadShape, measured: int, cpus: int) -> int:
    """Worker processes a scenario can use: `requested` (None: one per CPU), never more than the
    closed loop's clients, the open loop's requests, and 1 for modes that cannot be shared."""
    if shape.mode not in MODES_SHARED or measured <= 1:
        return 1
    wanted = cpus if requested is None else requested
    limit = (shape.concurrency or 1) if shape.mode == "closed" else measured
    if shape.mode == "open" and shape.max_concurrency:
        limit = min(limit, shape.max_concurrency)
    return max(1, min(wanted, limit, measured))


def split_load(shape: LoadShape, warmup: Sequence[RequestSpec], measured: Sequence[RequestSpec],
               workers: int) -> list[LoadPart]:
    """Each worker's part; `workers` from `worker_count`."""
    warm = [tuple(warmup[i::workers]) for i in range(workers)]
    if shape.mode == "closed":
        return _closed_parts(shape, warm, measured, workers)
    return _open_parts(shape, warm, measured, workers)


def _closed_parts(shape: LoadShape, warm: list[tuple[RequestSpec, ...]], measured: Sequence[RequestSpec],
                  workers: int) -> list[LoadPart]:
    slots = max(1, min(shape.concurrency or 1, len(measured)))
    owner = [slot % workers for slot in range(slots)]
    shares: list[list[RequestSpec]] = [[] for _ in range(workers)]
    for j, spec in enumerate(measured):
        shares[owner[j % slots]].append(spec)
    return [LoadPart(i, warm[i], tuple(shares[i]), dataclasses.replace(shape, concurrency=dealt(slots, workers, i)))
            for i in range(workers)]


def _open_parts(shape: LoadShape, warm: list[tuple[RequestSpec, ...]], measured: Sequence[RequestSpec],
                workers: int) -> list[LoadPart]:
    rate = shape.request_rate or math.inf
    offsets = arrival_offsets(len(measured), rate, shape.arrival, shape.burstiness, shape.seed)
    parts = []
    for i in range(workers):
        cap = max(1, dealt(shape.max_concurrency, workers, i)) if shape.max_concurrency else None
        parts.append(LoadPart(i, warm[i], tuple(measured[i::workers]), dataclasses.replace(shape, max_concurrency=cap),
                              schedule=tuple(offsets[i::workers])))
    return parts


def global_schedule(shape: LoadShape, measured: int) -> list[float]:
    """The one-process arrival offsets of an open-loop run (what the parts' schedules merge to)."""
    return arrival_offsets(measured, shape.request_rate or math.inf, shape.arrival, shape.burstiness, shape.seed)
