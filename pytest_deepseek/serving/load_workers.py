"""Load from several worker processes, each with its own event loop and connections.

The coordinator (the pytest process) deals the scenario out (`load_split`), starts the workers,
waits until each has sent its warm-up requests, and gives them one start time: the measured
phase begins at the same instant everywhere (perf_counter is CLOCK_MONOTONIC, one time axis for
the processes of a host; a worker on another machine has its clock offset measured and its times
shifted onto the coordinator's). Records stream back in small batches as requests finish and go
to the run's writer and progress as in one process; the coordinator counts failures against the
error budget, takes the early-stop looks over every worker's records, and cuts or stops all of
them. The result is merged as if one client had sent it (`load_merge`).

A worker talks to the coordinator through a `WorkerLink`; `LocalLink` runs it as a local process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import signal
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..credentials import redact
from ..fingerprint import redacted_url
from ..run_async import run_async
from .held import HeldRecords
from .load import ClientHealthSample, LoadResult, LoadRunner, cut_short_text
from .load_merge import (achieved_concurrency, achieved_rate, has_steady_window, merge_levels, merge_timelines,
                         peak_level, schedule_rate, shift_log, shift_record, shift_timeline)
from .load_split import LoadPart, global_schedule
from .measure import LoadRun, RequestPlan, drive, load_shape
from .records import RequestRecord, RunTimeline

# Worker -> coordinator
HELLO = "hello"  # the worker runs (sent first)
READY = "ready"  # warm-up sent; waiting for the start time
RECORDS = "records"  # (RECORDS, [RequestRecord, ...]) finished requests, in finishing order
IN_FLIGHT = "in_flight"  # (IN_FLIGHT, [RequestRecord, ...], RunTimeline, perf_counter_ns) answer to LOOK
DONE = "done"  # (DONE, WorkerOutcome)
FAILED = "failed"  # (FAILED, text) the worker raised; GONE: its process ended without a word
GONE = "gone"
# Coordinator -> worker
GO = "go"  # (GO, start time on the worker's clock)
LOOK = "look"  # send the records finished so far and a snapshot of those in flight
STOP = "stop"  # send nothing more, let the requests in flight finish
CUT = "cut"  # (CUT, reason) stop now, cancel the requests in flight (kept as in flight)

FLUSH_EVERY_S = 0.1  # how often a worker sends its finished records
START_MARGIN_S = 0.2  # the start time is this far ahead of the GO message
HELLO_TIMEOUT_S = 120.0  # a worker that has not said hello by then (a hung start-up) has failed


@dataclass(frozen=True)
class WorkerJob:
    """What one worker runs: the scenario's run (its own share of the plan) and its part."""

    run: LoadRun
    part: LoadPart


@dataclass
class WorkerOutcome:
    """What a worker knew at the end that its records do not say."""

    index: int
    timeline: RunTimeline
    health: ClientHealthSample
    in_flight_log: list[tuple[int, int]]
    launched: int  # open loop: arrivals sent
    warnings: tuple[str, ...] = ()  # the worker's own (`LoadResult.warnings`)


def job_for(run: LoadRun, part: LoadPart) -> WorkerJob:
    """The job of the worker running `part` (no look, no deadline: the coordinator owns them)."""
    plan = RequestPlan(list(part.warmup), list(part.measured), {})
    return WorkerJob(dataclasses.replace(run, plan=plan, should_stop=None, session_deadline=None), part)


# ---------------------------------------------------------------------------------------------
# The worker side


async def serve_job(job: WorkerJob, inbox: asyncio.Queue[tuple[Any, ...]], emit: Callable[[tuple[Any, ...]], None]) -> None:
    """Run `job` on this event loop: messages from the coordinator arrive in `inbox`, `emit` sends."""
    pending: list[RequestRecord] = []
    go: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def flush() -> None:
        if pending:
            emit((RECORDS, pending[:]))
            pending.clear()

    async def start() -> int:
        flush()
        emit((READY,))
        return await go

    emit((HELLO,))

    async def flusher() -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            flush()

    async def listen(runner: LoadRunner) -> None:
        while True:
            message = await inbox.get()
            if message[0] == GO and not go.done():
                go.set_result(int(message[1]))
            elif message[0] == LOOK:
                flush()
                emit((IN_FLIGHT, runner.in_flight_snapshot(), dataclasses.replace(runner.timeline),
                      time.perf_counter_ns()))
            elif message[0] == STOP:
                runner.stop()
            elif message[0] == CUT:
                runner.cut(str(message[1]))
                if not go.done():
                    go.set_result(time.perf_counter_ns())

    tasks: list[asyncio.Task[None]] = [asyncio.ensure_future(flusher())]
    runners: list[LoadRunner] = []

    async def alongside(runner: LoadRunner) -> None:
        runners.append(runner)
        tasks.append(asyncio.ensure_future(listen(runner)))

    try:
        result = await drive(job.run, pending.append, alongside=alongside, part=job.part, start=start)
    finally:
        for task in tasks:
            task.cancel()
    flush()
    runner = runners[0]
    emit((DONE, WorkerOutcome(job.part.index, result.timeline, result.health, list(runner.in_flight_log),
                              len(runner.launched_offsets), result.warnings)))


def _process_main(job: WorkerJob, conn: Any) -> None:
    """Entry point of a local worker process. Ctrl-C reaches the whole process group: the
    coordinator decides what happens (it cuts the workers), so a worker ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve_connection(job, conn))


async def _serve_connection(job: WorkerJob, conn: Any) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def read() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(inbox.put_nowait, (CUT, "stopped: the coordinator went away"))
                return
            loop.call_soon_threadsafe(inbox.put_nowait, message)

    threading.Thread(target=read, name="deepseek-load-worker-inbox", daemon=True).start()
    try:
        await serve_job(job, inbox, conn.send)
    except BaseException:  # reported to the coordinator, whatever it was
        conn.send((FAILED, traceback.format_exc()))
        raise


# ---------------------------------------------------------------------------------------------
# Links


class WorkerLink(Protocol):
    """One worker as the coordinator sees it."""

    index: int
    clock_offset_ns: int  # the worker's clock minus the coordinator's
    where: str  # where it runs, for messages

    def start(self, deliver: Callable[[int, tuple[Any, ...]], None]) -> None:
        """Start the worker; every message it sends is passed to `deliver(index, message)` from any
        thread (the caller makes it thread-safe); (GONE, text) once it is gone."""

    def send(self, message: tuple[Any, ...]) -> None:
        """Send the worker a message (never raises: a gone worker is reported by `start`'s delivery)."""

    def close(self) -> None:
        """Wait a moment for the worker to end, then make sure it has."""


class LocalLink:
    """A worker in a local process (spawned: nothing of the pytest process is inherited)."""

    def __init__(self, job: WorkerJob) -> None:
        self.index = job.part.index
        self.clock_offset_ns = 0
        self.where = f"local process {self.index}"
        self._job = job
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_process_main, args=(job, child), daemon=True,
                                        name=f"deepseek-load-worker-{self.index}")
        self._child = child

    def start(self, deliver: Callable[[int, tuple[Any, ...]], None]) -> None:
        self._process.start()
        self._child.close()
        self.where = f"local process {self.index} (pid {self._process.pid})"

        def read() -> None:
            while True:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    self._process.join(5)
                    deliver(self.index, (GONE, f"{self.where} ended (exit code {self._process.exitcode})"))
                    return
                deliver(self.index, message)

        threading.Thread(target=read, name=f"deepseek-load-link-{self.index}", daemon=True).start()

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            pass  # gone: its reader reports it

    def close(self) -> None:
        if self._process.pid is None:  # never started (its job could not be sent)
            self._conn.close()
            return
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()


# ---------------------------------------------------------------------------------------------
# The coordinator


class _Coordinator:
    """The state of one multi-process run on the coordinator's event loop."""

    def __init__(self, run: LoadRun, links: Sequence[WorkerLink], on_record: Callable[[RequestRecord], None]) -> None:
        self.run, self.links, self.on_record = run, links, on_record
        self.shape = load_shape(run.scenario)
        self.planned = len(run.plan.measured)
        self.records = HeldRecords()  # every worker's finished records, in arrival order
        self.worker_of = array("h")  # the worker each held record came from
        self.outcomes: dict[int, WorkerOutcome] = {}
        self.ended: set[int] = set()  # workers that ended, with an outcome or not
        self.failed = 0
        self.cut_reason: str | None = None
        self.t_run = time.perf_counter()
        self.t_cut: float | None = None
        self.problem: str | None = None  # a worker that failed or vanished
        self.stopped_early = False
        self.deciding_timeline: RunTimeline | None = None
        # The look under way: per worker, how many records (of every worker) were held when it
        # answered (its own among the first that many are its part of the look: those it finished
        # before answering), its in-flight copies and its timeline.
        self.look: dict[int, tuple[int, list[RequestRecord], RunTimeline | None]] | None = None
        self.look_stamps: list[int] = []  # when each worker answered it (coordinator's clock)
        self.look_running = False
        self.since_look = 0

    # -- incoming --------------------------------------------------------------------------
    def take_records(self, index: int, batch: Sequence[RequestRecord]) -> None:
        offset = self.links[index].clock_offset_ns
        for record in batch:
            record = shift_record(record, -offset)
            self.on_record(record)
            record.compact()
            self.records.append(record)
            self.worker_of.append(index)
            if record.warmup:
                continue
            self.since_look += 1
            if not record.success and record.error_kind is not None:
                self.count_failure()
        if self.since_look >= self.run.check_every:
            self.since_look = 0
            self.start_look()

    def count_failure(self) -> None:
        self.failed += 1
        budget = self.run.scenario.error_budget
        if budget is not None and self.failed > budget * self.planned:
            self.cut(f"stopped: {self.failed} failed requests exceed the error budget "
                     f"({budget:.2%} of {self.planned} planned)")

    def cut(self, reason: str) -> None:
        if self.cut_reason is not None:
            return
        self.cut_reason, self.t_cut = reason, time.perf_counter()
        for link in self.links:
            link.send((CUT, reason))

    def worker_failed(self, index: int, text: str, when: str) -> None:
        """A worker raised or vanished: the run is cut (the others' records kept), the failure said."""
        self.take_end(index, None)
        said = redact(_last_line(text), [self.run.target.api_key] if self.run.target.api_key else [])
        self.problem = self.problem or f"stopped: load worker {self.links[index].where} failed {when}: " \
                                       f"{redacted_url(said)}"
        self.cut(self.problem)

    # -- looks -----------------------------------------------------------------------------
    def start_look(self) -> None:
        if self.run.should_stop is None or self.look_running or self.stopped_early or self.cut_reason:
            return
        self.look_running = True
        self.look = {}
        self.look_stamps = []
        for index, link in enumerate(self.links):
            if index not in self.ended:
                link.send((LOOK,))
        self._close_look()

    def take_look_reply(self, index: int, in_flight: Sequence[RequestRecord], timeline: RunTimeline,
                        stamp_ns: int) -> None:
        """A worker's answer to the look under way: its in-flight copies and timeline at `stamp_ns`
        (its clock); its finished records are those received before the answer (same channel)."""
        if self.look is None or index in self.look:
            return
        offset = self.links[index].clock_offset_ns
        self._answer(index, [shift_record(r, -offset) for r in in_flight], shift_timeline(timeline, -offset))
        self.look_stamps.append(stamp_ns - offset)
        self._close_look()

    def _answer(self, index: int, in_flight: list[RequestRecord], timeline: RunTimeline) -> None:
        assert self.look is not None
        self.look[index] = (len(self.records), in_flight, timeline)

    def _close_look(self) -> None:
        """Decide the look once every worker has answered (one that ended or failed meanwhile with
        what it had sent)."""
        if self.look is None:
            return
        for index in self.ended:  # an ended worker answers with what it sent
            if index not in self.look:
                outcome = self.outcomes.get(index)
                offset = self.links[index].clock_offset_ns
                self.look[index] = (len(self.records), [],
                                    None if outcome is None else shift_timeline(outcome.timeline, -offset))
        if all(i in self.look for i in range(len(self.links))):
            replies, self.look = self.look, None
            self.decide_look(replies)

    def take_end(self, index: int, outcome: WorkerOutcome | None) -> None:
        """A worker ended (`outcome` None: it failed or vanished)."""
        if outcome is not None:
            self.outcomes[index] = outcome
        self.ended.add(index)
        self._close_look()

    def decide_look(self, replies: dict[int, tuple[int, list[RequestRecord], RunTimeline | None]]) -> None:
        """Run the early-stop check over every worker's records, in a thread; its window ends at the
        earliest answer (events after it are outside the window, as in one process)."""
        timelines = [timeline for _, _, timeline in replies.values() if timeline is not None]
        merged = merge_timelines(self.shape.mode, timelines, peak=0)
        if merged.t_load_reached is None or self.run.should_stop is None or not self.look_stamps:
            self.look_running = False
            return
        t_look = min(self.look_stamps)
        window = dataclasses.replace(merged, t_drain_start=t_look, t_end=t_look,
                                     target_concurrency=self.shape.concurrency)
        held, owners = self.records.snapshot(), self.worker_of[:]
        sent_before = {index: count for index, (count, _, _) in replies.items()}
        in_flight = [r for _, copies, _ in replies.values() for r in copies]
        should_stop = self.run.should_stop

        def decide() -> bool:  # in the worker thread: spilled records are read back there
            finished = [r for k, r in enumerate(held) if not r.warmup and k < sent_before[owners[k]]]
            return should_stop(finished + in_flight, window)

        future = asyncio.get_running_loop().run_in_executor(None, decide)

        def done(f: asyncio.Future[bool]) -> None:
            self.look_running = False
            if not f.cancelled() and f.exception() is None and f.result() and not self.stopped_early:
                self.stopped_early, self.deciding_timeline = True, window
                for link in self.links:
                    link.send((STOP,))

        future.add_done_callback(done)

    # -- the end ---------------------------------------------------------------------------
    def result(self) -> LoadResult:
        indices = sorted(self.outcomes)
        offsets = {i: self.links[i].clock_offset_ns for i in indices}
        timelines = [shift_timeline(self.outcomes[i].timeline, -offsets[i]) for i in indices]
        log = merge_levels(shift_log(self.outcomes[i].in_flight_log, -offsets[i]) for i in indices)
        timeline = merge_timelines(self.shape.mode, timelines, peak_level(log))
        records = list(self.records)  # judged together: read back once, after the run
        measured = [r for r in records if not r.warmup]
        health = self.health(timeline, log, measured, [self.outcomes[i] for i in indices])
        if not has_steady_window(self.shape.mode, self.shape.request_rate):
            timeline.t_load_reached = timeline.t_drain_start = None
        cut = self.cut_reason or self.problem
        cut_short = None if cut is None else cut_short_text(cut, (self.t_cut or time.perf_counter()) - self.t_run,
                                                            measured, self.planned)
        warnings = self.records.warnings + tuple(f"load worker {i}: {warning}" for i in indices
                                                 for warning in self.outcomes[i].warnings)
        return LoadResult(records=records, timeline=timeline, health=health, stopped_early=self.stopped_early,
                          deciding_timeline=self.deciding_timeline, cut_short=cut_short, warnings=warnings)

    def health(self, timeline: RunTimeline, log: list[tuple[int, int]], measured: list[RequestRecord],
               outcomes: list[WorkerOutcome]) -> ClientHealthSample:
        """The run's client health: each worker's own, and the achieved load over the merged records."""
        # CPU and loop figures are each process's own (`ClientHealth.of` judges the worst one)
        overall = ClientHealthSample(target_rate=self.shape.request_rate, workers=[o.health for o in outcomes],
                                     mean_in_flight=achieved_concurrency(log, timeline))
        if self.shape.mode == "closed":
            overall.target_concurrency = max(1, min(self.shape.concurrency or 1, self.planned))
        if self.shape.mode == "open":
            overall.achieved_rate = achieved_rate(measured)
            launched = sum(o.launched for o in outcomes)
            if self.shape.request_rate != float("inf"):
                overall.target_rate = schedule_rate(global_schedule(self.shape, self.planned), launched) \
                    or self.shape.request_rate
        return overall


async def coordinate(run: LoadRun, links: Sequence[WorkerLink],
                     on_record: Callable[[RequestRecord], None]) -> LoadResult:
    """Run the workers behind `links` (one per part of the run) to the end and merge what they sent.

    A worker that cannot start, raises or vanishes cuts the run: nothing more is sent, the other
    workers' records are kept and the failure is the result's `cut_short` (an ERROR, never a crash)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, tuple[Any, ...]]] = asyncio.Queue()
    state = _Coordinator(run, links, on_record)

    def deliver(index: int, message: tuple[Any, ...]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (index, message))
        except RuntimeError:  # the loop closed: a link's reader reported its end after the run was over
            pass

    deadline = run.session_deadline
    timer = None if deadline is None else loop.call_later(max(0.0, deadline.left_s()), state.cut, deadline.reached())
    try:
        for link in links:
            try:
                link.start(deliver)
            except Exception as exc:  # e.g. a job that cannot be sent to another process
                deliver(link.index, (FAILED, f"could not start: {type(exc).__name__}: {exc}"))
        await _until_ready(state, queue)
        t0 = time.perf_counter_ns() + int(START_MARGIN_S * 1e9)
        for link in links:
            link.send((GO, t0 + link.clock_offset_ns))
        await _until_done(state, queue)
    finally:
        if timer is not None:
            timer.cancel()
        if len(state.ended) < len(links):  # interrupted: the workers must not go on sending
            for link in links:
                link.send((CUT, "stopped: the run was interrupted"))
        for link in links:
            try:
                link.close()
            except Exception:  # one link failing to close must not leave the others running
                continue
    return state.result()


async def _until_ready(state: _Coordinator, queue: asyncio.Queue[tuple[int, tuple[Any, ...]]]) -> None:
    ready: set[int] = set()
    hello: set[int] = set()
    hello_by = time.monotonic() + HELLO_TIMEOUT_S
    while len(ready) < len(state.links):
        try:
            waiting = len(hello | ready | state.ended) < len(state.links)
            index, message = await asyncio.wait_for(queue.get(), max(0.0, hello_by - time.monotonic()) if waiting
                                                    else None)
        except TimeoutError:
            for silent in set(range(len(state.links))) - hello - ready - state.ended:
                state.worker_failed(silent, f"did not start within {HELLO_TIMEOUT_S:g} s", "before the measured phase")
                ready.add(silent)
            continue
        kind = message[0]
        if kind == HELLO:
            hello.add(index)
        elif kind == READY:
            ready.add(index)
        elif kind == RECORDS:
            state.take_records(index, message[1])
        elif kind in (FAILED, GONE) and index not in state.ended:
            state.worker_failed(index, message[1], "before the measured phase")
            ready.add(index)
        elif kind == DONE:  # cut during warm-up
            state.take_end(index, message[1])
            ready.add(index)


async def _until_done(state: _Coordinator, queue: asyncio.Queue[tuple[int, tuple[Any, ...]]]) -> None:
    while len(state.ended) < len(state.links):
        index, message = await queue.get()
        kind = message[0]
        if kind == RECORDS:
            state.take_records(index, message[1])
        elif kind == IN_FLIGHT:
            state.take_look_reply(index, message[1], message[2], message[3])
        elif kind == DONE:
            state.take_end(index, message[1])
        elif kind in (FAILED, GONE) and index not in state.ended:
            state.worker_failed(index, message[1], "while measuring")


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else str(text)


def run_with_workers(run: LoadRun, parts: Sequence[LoadPart], on_record: Callable[[RequestRecord], None],
                     make_link: Callable[[WorkerJob], WorkerLink] = LocalLink) -> LoadResult:
    """Drive `run` split into `parts`, one worker per part (local processes unless `make_link` says)."""
    links = [make_link(job_for(run, part)) for part in parts]
    return run_async(coordinate(run, links, on_record))
