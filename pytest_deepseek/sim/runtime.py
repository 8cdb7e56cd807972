"""Runs the engine model against the real clock: each step's chunks go out at the step's end time.

Targets are absolute `perf_counter_ns` values from the model, so timer lateness never accumulates;
when the loop falls more than `max_lag_ns` behind (CPU starvation), the schedule is re-anchored
to now instead of bursting to catch up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from .engine import EngineModel, EngineParams


class StepSink(Protocol):
    """Receives a sequence's tokens when its step ends."""

    def on_tokens(self, n: int, finished: bool) -> None: ...


class EngineLoop:
    """The real-time driver of an `EngineModel`."""

    def __init__(self, params: EngineParams, max_lag_ns: int = 20_000_000) -> None:
        self.model = EngineModel(params)
        self.max_lag_ns = max_lag_ns
        self._sinks: dict[int, StepSink] = {}
        self._next_id = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.steps = 0
        self.late_ns_max = 0  # worst lateness of a step's emission behind its target

    def start(self) -> None:
        """Start the driver task on the running loop."""
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Cancel the driver task."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def submit(self, sink: StepSink, arrival_ns: int, prompt_tokens: int, output_tokens: int) -> int:
        """Queue a sequence; returns its id (for `abort`)."""
        self._next_id += 1
        seq_id = self._next_id
        self._sinks[seq_id] = sink
        self.model.submit(seq_id, arrival_ns, prompt_tokens, output_tokens)
        self._wake.set()
        return seq_id

    def abort(self, seq_id: int) -> None:
        """Drop a sequence (client gone, injected failure)."""
        self._sinks.pop(seq_id, None)
        self.model.abort(seq_id)

    async def _run(self) -> None:
        model = self.model
        perf = time.perf_counter_ns
        sinks = self._sinks
        while True:
            start = model.ready_at()
            if start is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = perf()
            if now - start > self.max_lag_ns:
                start = now
            step = model.plan_step(start)
            if step is None:  # not reachable with real arrival times; never spin if it is
                await asyncio.sleep(0.001)
                continue
            delay_ns = step.end_ns - perf()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / 1e9)
            late = perf() - step.end_ns
            if late > self.late_ns_max:
                self.late_ns_max = late
            finished = step.finished
            for seq_id, n in step.emits:
                sink = sinks.get(seq_id)
                if sink is not None:
                    done = seq_id in finished
                    if done:
                        del sinks[seq_id]
                    sink.on_tokens(n, done)
            self.steps += 1
            await asyncio.sleep(0)  # let the loop flush writes and accept new requests
