"""Load generation: closed loop, open loop (Poisson / gamma / constant / all at once), latency batches.

The generator decides when each request is sent and keeps the run's timeline (the steady-state
window of METRICS.md) and the client's own health (event-loop lag, schedule lag, CPU). Sending is
delegated to a `send` coroutine (the streaming client), so this module is tested with fakes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from array import array
from collections.abc import Awaitable, Callable, MutableSequence, Sequence
from dataclasses import dataclass, field

from .collector import quiet_collector
from .held import HeldRecords
from .load_merge import achieved_concurrency, achieved_rate, has_steady_window, schedule_rate
from .records import RequestRecord, RequestSpec, RunTimeline

# (spec, t_queued, on_start) -> record; `on_start` gets the record while it is being filled.
SendFn = Callable[[RequestSpec, int, Callable[[RequestRecord], None]], Awaitable[RequestRecord]]
RecordSink = Callable[[RequestRecord], None]
StopCheck = Callable[[Sequence[RequestRecord], RunTimeline], bool]
StartBarrier = Callable[[], Awaitable[int]]  # waits for every load process; returns the common start time


@dataclass(frozen=True)
class LoadShape:
    """How requests are paced."""

    mode: str  # closed | open | batch
    concurrency: int | None = None
    request_rate: float | None = None  # requests/s; inf = all at once
    arrival: str = "poisson"
    burstiness: float = 1.0
    max_concurrency: int | None = None
    batch_size: int | None = None
    num_iters: int | None = None
    duration_s: float | None = None
    seed: int = 0


@dataclass
class ClientHealthSample:
    """The client's own health over the measured phase."""

    # One value per 10 ms of the run and one per open-loop request: typed arrays, 8 bytes each
    # (a float in a list takes 32), as a long run keeps them all.
    loop_lag_ms: MutableSequence[float] = field(default_factory=lambda: array("d"))
    schedule_lag_ms: MutableSequence[float] = field(default_factory=lambda: array("d"))
    cpu_s: float = 0.0
    wall_s: float = 0.0
    target_concurrency: int | None = None
    mean_in_flight: float = 0.0
    target_rate: float | None = None
    achieved_rate: float | None = None
    workers: list["ClientHealthSample"] = field(default_factory=list)  # each load process's own, when several
    # A load worker on a cluster node: where it ran, its clock minus the coordinator's (within the
    # uncertainty), and how far that offset moved by the end of the run.
    where: str | None = None
    clock_offset_ms: float | None = None
    clock_uncertainty_ms: float | None = None
    clock_drift_ms: float | None = None


@dataclass
class LoadResult:
    """Records (warmup included, marked), the measured timeline and client health."""

    records: list[RequestRecord]
    timeline: RunTimeline
    health: ClientHealthSample
    stopped_early: bool = False
    batch_latencies_ms: list[float] = field(default_factory=list)
    deciding_timeline: RunTimeline | None = None
    cut_short: str | None = None  # why the run was stopped before its plan ran out, with its counts
    warnings: tuple[str, ...] = ()  # what went wrong around the figures without touching them (a failed spill)


def left_in_flight(record: RequestRecord) -> RequestRecord:
    """`record` as a request still in flight is kept: neither completed nor failed (no error kind),
    with the token events seen so far and no final usage."""
    return dataclasses.replace(record, event_times=list(record.event_times), event_tokens=list(record.event_tokens),
                               event_reasoning=list(record.event_reasoning), success=False, error_kind=None,
                               error_detail=None, completion_tokens=None, t_end=None)


def arrival_offsets(n: int, rate: float, arrival: str, burstiness: float, seed: int) -> list[float]:
    """Send offsets in seconds from the start of the measured phase (the precomputed schedule)."""
    if n <= 0:
        return []
    if math.isinf(rate):
        return [0.0] * n
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    for i in range(n):
        if i > 0:
            if arrival == "constant":
                gap = 1.0 / rate
            elif arrival == "gamma":
                # Mean 1/rate; shape = burstiness (1 is Poisson, < 1 burstier, > 1 smoother).
                gap = rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
            else:
                gap = rng.expovariate(rate)
            t += gap
        offsets.append(t)
    return offsets


def cut_short_text(reason: str, after_s: float, measured: Sequence[RequestRecord], planned: int) -> str:
    """Why a run stopped before its plan ran out, with what it had measured by then."""
    finished = sum(1 for r in measured if r.success or r.error_kind is not None)
    return f"{reason} after {after_s:.1f} s: {finished} of {planned} requests measured"


class _LoopLagProbe:
    """Measures how late the event loop wakes a 10 ms sleeper (client saturation)."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.lags_ms = array("d")
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        interval_ns = int(self.interval_s * 1e9)
        while True:
            t0 = time.perf_counter_ns()
            await asyncio.sleep(self.interval_s)
            self.lags_ms.append(max(0.0, (time.perf_counter_ns() - t0 - interval_ns) / 1e6))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class LoadRunner:
    """Runs one scenario's requests with the given shape."""

    def __init__(
        self,
        send: SendFn,
        shape: LoadShape,
        *,
        on_record: RecordSink | None = None,
        should_stop: StopCheck | None = None,
        check_every: int = 50,
        error_budget: float | None = None,
        schedule: Sequence[float] | None = None,
    ) -> None:
        self.send = send
        self.shape = shape
        self.on_record = on_record
        self.should_stop = should_stop
        self.check_every = max(1, check_every)
        self.error_budget = error_budget  # failed measured requests allowed, as a share of those planned
        self.schedule = schedule  # open loop: send offsets of the measured requests (default: drawn here)
        self._t0_ns: int | None = None  # when the measured phase starts, when a barrier fixed it
        self.records = HeldRecords()  # every finished record, warm-up included, in finishing order
        self.measured = 0  # measured records among them
        self.live: dict[int, RequestRecord] = {}  # requests in flight, filled in place
        self._in_flight = 0
        # When the measured requests in flight changed and to how many: two typed arrays, as a
        # long run keeps two entries per request (tuples of ints take about 100 bytes each).
        self._change_times = array("q")
        self._change_levels = array("i")
        self._stop = False
        self._look_running = False
        self.stopped_early = False
        self.deciding_timeline: RunTimeline | None = None  # the window of the look that stopped the run
        self.timeline = RunTimeline(mode=shape.mode, t_start=0)  # type: ignore[arg-type]
        self.planned = 0  # measured requests planned
        self.failed = 0  # measured requests failed so far
        self.cut_reason: str | None = None  # set by `cut`
        self._t_run = time.perf_counter()
        self._t_cut: float | None = None
        self._waiting: set[asyncio.Task[object]] = set()  # tasks in a send or a schedule wait: `cut` cancels them
        self.launched_offsets = array("d")  # open loop: the offsets of the arrivals sent so far

    # -- bookkeeping ---------------------------------------------------------------------------
    def _track(self, delta: int) -> None:
        self._in_flight += delta
        self._change_times.append(time.perf_counter_ns())
        self._change_levels.append(self._in_flight)
        self.timeline.peak_concurrency = max(self.timeline.peak_concurrency, self._in_flight)

    @property
    def in_flight_log(self) -> list[tuple[int, int]]:
        """(time, measured requests in flight from then on), in time order."""
        return list(zip(self._change_times, self._change_levels))

    def _started(self, record: RequestRecord) -> None:
        self.live[record.index] = record

    def in_flight_snapshot(self) -> list[RequestRecord]:
        """Copies of the measured requests still in flight, as an interim look must count them: not
        completed, not failed (`success=False`, no error kind), with the token events seen so far."""
        return [left_in_flight(r) for r in list(self.live.values()) if r.t_send and not r.warmup]

    # -- stopping ------------------------------------------------------------------------------
    def cut(self, reason: str) -> None:
        """Stop the run now: nothing more is sent and the requests in flight are cancelled (their
        records are kept as in flight). `reason` starts the run's `cut_short` text."""
        if self.cut_reason is not None:
            return
        self.cut_reason = reason
        self._t_cut = time.perf_counter()
        self._stop = True
        current = asyncio.current_task()
        for task in list(self._waiting):
            if task is not current:
                task.cancel()

    def stop(self) -> None:
        """Send nothing more; the requests in flight finish (an early stop decided elsewhere)."""
        self._stop = True

    def _cut_here(self) -> bool:
        """In a task `cut` cancelled: take its cancellation back (True), unless someone else also
        cancelled it (False: the cancellation must go on)."""
        task = asyncio.current_task()
        return self.cut_reason is not None and task is not None and task.uncancel() == 0

    def _count_failure(self, record: RequestRecord) -> None:
        """Count a failed measured request; cut the run once the failures exceed what the error
        budget allows over the planned requests (no later outcome could bring it back under)."""
        self.failed += 1
        if self.error_budget is None or self.failed <= self.error_budget * self.planned:
            return
        self.cut(f"stopped: {self.failed} failed requests exceed the error budget "
                 f"({self.error_budget:.2%} of {self.planned} planned)")

    def _cut_short(self, records: Sequence[RequestRecord]) -> str | None:
        """Why the run stopped before its plan ran out, with what it measured by then."""
        if self.cut_reason is None:
            return None
        return cut_short_text(self.cut_reason, (self._t_cut or time.perf_counter()) - self._t_run,
                              [r for r in records if not r.warmup],
                              self.planned)

    # -- one request ---------------------------------------------------------------------------
    async def _one(self, spec: RequestSpec, t_queued: int, t_scheduled: int | None = None) -> RequestRecord | None:
        """Send one request and keep its record (None: the run was cut before it was sent)."""
        if self.cut_reason is not None:
            return None
        measured = not spec.warmup
        if measured:
            self._track(+1)
        record = await self._send(spec, t_queued)
        if record is None:
            if measured:
                self._track(-1)
            return None
        record.t_scheduled = t_scheduled  # before the sink sees it: the written record is the whole record
        if measured:
            self._track(-1)
            if not self.timeline.t_start or record.t_send < self.timeline.t_start:
                self.timeline.t_start = record.t_send
            self.timeline.t_end = max(self.timeline.t_end, record.t_last_token or record.t_end or record.t_send)
            self.measured += 1
        if self.on_record is not None:
            self.on_record(record)
        record.compact()  # written and counted: from here on it is only kept for judging
        self.records.append(record)
        if measured and not record.success and record.error_kind is not None:
            self._count_failure(record)
        if measured and self.should_stop is not None and self.measured % self.check_every == 0:
            self._look()
        return record

    async def _send(self, spec: RequestSpec, t_queued: int) -> RequestRecord | None:
        """The request's record: as the client returned it, or as left in flight when the run was
        cut meanwhile (None when it had not started)."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            record = await self.send(spec, t_queued, self._started)
        except asyncio.CancelledError:
            started = self.live.pop(spec.index, None)
            if not self._cut_here():
                raise
            return left_in_flight(started) if started is not None and started.t_send else None
        finally:
            self._waiting.discard(task)
        self.live.pop(record.index, None)
        return record

    def _look(self) -> None:
        """Start an interim look in a worker thread (never on the event loop: it would stall the
        timing of every stream); one look at a time, on a snapshot taken now."""
        if self._look_running or self._stop or self.should_stop is None:
            return
        if self.timeline.t_load_reached is None:
            return
        t_look = time.perf_counter_ns()
        held = self.records.snapshot()
        in_flight = self.in_flight_snapshot()
        timeline = dataclasses.replace(self.timeline, t_drain_start=t_look, t_end=t_look)
        self._look_running = True
        should_stop = self.should_stop

        def decide() -> bool:  # in the worker thread: spilled records are read back there
            return should_stop([r for r in held if not r.warmup] + in_flight, timeline)

        def done(future: asyncio.Future[bool]) -> None:
            self._look_running = False
            if not future.cancelled() and future.exception() is None and future.result():
                self.stopped_early = True
                self._stop = True
                self.deciding_timeline = timeline

        future = asyncio.get_running_loop().run_in_executor(None, decide)
        future.add_done_callback(done)

    def _drain_started(self) -> None:
        if self.timeline.t_drain_start is None:
            self.timeline.t_drain_start = time.perf_counter_ns()

    # -- modes ---------------------------------------------------------------------------------
    async def _closed(self, specs: Sequence[RequestSpec]) -> None:
        concurrency = self._closed_concurrency(len(specs))
        queue = list(reversed(specs))
        deadline = None

        async def client() -> None:
            while True:
                if self._stop or not queue or (deadline is not None and time.perf_counter() >= deadline):
                    self._drain_started()
                    return
                spec = queue.pop()
                await self._one(spec, time.perf_counter_ns())

        if self.shape.duration_s is not None:
            deadline = time.perf_counter() + self.shape.duration_s
        tasks = [asyncio.ensure_future(client()) for _ in range(min(concurrency, max(1, len(specs))))]
        await asyncio.gather(*tasks)

    async def _open(self, specs: Sequence[RequestSpec]) -> None:
        rate = self.shape.request_rate or math.inf
        if self.schedule is not None:
            offsets = list(self.schedule)
        else:
            offsets = arrival_offsets(len(specs), rate, self.shape.arrival, self.shape.burstiness, self.shape.seed)
        cap = asyncio.Semaphore(self.shape.max_concurrency) if self.shape.max_concurrency else None
        t0 = self._t0_ns or time.perf_counter_ns()
        deadline_ns = t0 + int(self.shape.duration_s * 1e9) if self.shape.duration_s else None
        # Only the requests in flight are kept: a finished task would hold on to its record (and an
        # hour-long run to all of them) until the end.
        in_flight: set[asyncio.Task[None]] = set()
        raised: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                raised.append(task.exception())  # type: ignore[arg-type]

        async def capped(spec: RequestSpec, t_scheduled: int) -> None:
            t_queued = time.perf_counter_ns()
            self.health.schedule_lag_ms.append((t_queued - t_scheduled) / 1e6)
            if cap is None:
                await self._one_scheduled(spec, t_queued, t_scheduled)
                return
            async with cap:
                await self._one_scheduled(spec, t_queued, t_scheduled)

        launched_offsets = self.launched_offsets
        for spec, offset in zip(specs, offsets):
            t_scheduled = t0 + int(offset * 1e9)
            if self._stop or (deadline_ns is not None and t_scheduled > deadline_ns):
                break
            launched_offsets.append(offset)
            delay = (t_scheduled - time.perf_counter_ns()) / 1e9
            if delay > 0 and not await self._wait(delay):
                break
            if self.timeline.t_load_reached is None and not math.isinf(rate):
                self.timeline.t_load_reached = time.perf_counter_ns()
            task = asyncio.ensure_future(capped(spec, t_scheduled))
            in_flight.add(task)
            task.add_done_callback(finished)
        if not math.isinf(rate):
            self._drain_started()
            # The schedule's own rate: what the client was asked to achieve with these arrivals.
            self.health.target_rate = schedule_rate(launched_offsets, len(launched_offsets)) or self.health.target_rate
        await asyncio.gather(*in_flight)
        if raised:
            raise raised[0]

    async def _wait(self, delay: float) -> bool:
        """Sleep until the next send; False when the run was cut meanwhile."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if not self._cut_here():
                raise
            return False
        finally:
            self._waiting.discard(task)
        return True

    async def _one_scheduled(self, spec: RequestSpec, t_queued: int, t_scheduled: int) -> RequestRecord | None:
        return await self._one(spec, t_queued, t_scheduled)

    async def _batch(self, specs: Sequence[RequestSpec]) -> list[float]:
        size = self.shape.batch_size or 1
        iters = self.shape.num_iters or max(1, len(specs) // size)
        latencies: list[float] = []
        for i in range(iters):
            if self._stop:
                break
            batch = [specs[(i * size + j) % len(specs)] for j in range(size)]
            t0 = time.perf_counter_ns()
            records = await asyncio.gather(*(self._one(spec, time.perf_counter_ns()) for spec in batch))
            if self.cut_reason is not None:
                break  # a cut batch has no latency
            t_done = max((r.t_end or r.t_last_token or t0) for r in records if r is not None)
            latencies.append((t_done - t0) / 1e6)
        return latencies

    # -- entry point ---------------------------------------------------------------------------
    async def run(self, warmup: Sequence[RequestSpec], measured: Sequence[RequestSpec],
                  start: StartBarrier | None = None) -> LoadResult:
        """Send the warmup requests (excluded from every figure), then the measured ones; with
        `start`, the measured phase begins at the perf_counter_ns time it returns (other load
        processes start theirs at the same instant)."""
        self.health = ClientHealthSample(target_concurrency=self.shape.concurrency, target_rate=self.shape.request_rate)
        self.planned = len(measured)
        self._t_run = time.perf_counter()
        if warmup:
            concurrency = self.shape.concurrency or self.shape.batch_size or self.shape.max_concurrency or len(warmup)
            semaphore = asyncio.Semaphore(max(1, concurrency))

            async def warm(spec: RequestSpec) -> None:
                async with semaphore:
                    await self._one(spec, time.perf_counter_ns())

            await asyncio.gather(*(warm(spec) for spec in warmup))
        with quiet_collector():
            if start is not None:
                self._t0_ns = await start()
                await asyncio.sleep(max(0.0, (self._t0_ns - time.perf_counter_ns()) / 1e9))
            probe = _LoopLagProbe()
            probe.start()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            batch_latencies: list[float] = []
            if self.shape.mode == "closed":
                self.health.target_concurrency = self._closed_concurrency(len(measured))
                self._install_load_mark(len(measured))
                await self._closed(measured)
            elif self.shape.mode == "open":
                await self._open(measured)
            else:
                batch_latencies = await self._batch(measured)
            await probe.stop()
            self.health.cpu_s = time.process_time() - cpu0
            self.health.wall_s = time.perf_counter() - wall0
            self.health.loop_lag_ms = probe.lags_ms
        self.health.mean_in_flight = achieved_concurrency(self.in_flight_log, self.timeline)
        records = list(self.records)  # judged together: read back once, after the run
        if self.shape.mode == "open":
            self.health.achieved_rate = achieved_rate(records)
        if not has_steady_window(self.shape.mode, self.shape.request_rate):
            self.timeline.t_load_reached = None
            self.timeline.t_drain_start = None
        return LoadResult(
            records=records,
            timeline=self.timeline,
            health=self.health,
            stopped_early=self.stopped_early,
            batch_latencies_ms=batch_latencies,
            deciding_timeline=self.deciding_timeline,
            cut_short=self._cut_short(records),
            warnings=self.records.warnings,
        )

    def _closed_concurrency(self, n_specs: int) -> int:
        """Clients actually used: never more than there are requests to send."""
        return max(1, min(self.shape.concurrency or 1, n_specs))

    def _install_load_mark(self, n_specs: int) -> None:
        """Closed loop: the load is reached at the send of the request that fills the last slot."""
        original = self.send
        concurrency = self._closed_concurrency(n_specs)
        sent = 0

        async def marking_send(spec: RequestSpec, t_queued: int,
                               on_start: Callable[[RequestRecord], None]) -> RequestRecord:
            nonlocal sent
            sent += 1
            if sent == concurrency and self.timeline.t_load_reached is None:
                # perf_counter right before handing over: the client stamps t_send a moment later.
                self.timeline.t_load_reached = time.perf_counter_ns()
            return await original(spec, t_queued, on_start)

        self.send = marking_send
