"""Soak: the serving client held at steady load against the simulator for a long time.

`run_soak` starts the simulator in another process and drives a closed loop against it with the
serving gate's own pieces (prompt plan, load shape, connection pool, streaming client, load runner,
`records.jsonl` writer), refilling every slot until the duration is over. Every `interval_s` it
samples the client process (RSS, CPU) and the figures of the interval: `compute_run_metrics` over
the requests finished in it plus the ones still in flight, with the interval as the steady window
(so every token counts in the interval it arrived in, as the gate's interim looks count them).
`summarize` turns the intervals into RSS growth and the drift of the figures, against the targets.

The load runner keeps every record until the run ends (the gate judges them all at once), the
newest in memory up to `serving.held.MEMORY_BUDGET_BYTES` and the rest in a spill file; the
samples show the estimated memory of the ones in memory, so that what remains (a leak) can be
told apart. Garbage collections are timed too: a collection stops every stream's reads, and
a full one takes longer the more objects the process holds. `benchmarks/soak.py` prints the
figures; tests/soak checks the plumbing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..endpoint import probe_endpoint
from ..report.store import RunFolder
from ..run_async import run_async
from ..serving.contract import ClientHealth
from ..serving.held import HeldRecords
from ..serving.load import LoadResult, LoadRunner
from ..serving.measure import (
    LoadRun,
    RecordWriter,
    RequestPlan,
    ServingTarget,
    drive,
    plan_requests,
    prompt_seed,
)
from ..serving.metrics import LatencySummary, compute_run_metrics
from ..serving.records import Deadlines, RequestRecord, RunTimeline
from ..serving.spec import Scenario
from ..sim.config import SimConfig
from ..sim.launcher import start_sim
from ..sim.urls import parse_sim_url
from ..stats.percentiles import quantile_bound_ranks
from ..tokenizers import TextTokenizer, embedded_tokenizer

# About 5,000 output tokens/s from 25 streams: the simulator's 5 ms decode step gives each stream
# 200 tokens/s whatever the batch (measured on a 2-core machine: 4,960 tok/s, client ~0.12 core).
DEFAULT_SIM_URL = "sim://fast?step_base_ms=5&step_per_seq_ms=0"
DEFAULT_CONCURRENCY = 25
RSS_TARGET_MB_PER_HOUR = 50.0
DRIFT_TARGET_PCT = 1.0
BASELINE_MAX_S = 600.0  # drift compares the first and last 10 minutes (thirds of a shorter run)
DISTINCT_PROMPTS = 256  # prompts built with the tokenizer; the run repeats them under fresh indices
REQUEST_MARGIN = 1.25  # requests planned beyond the most the simulator can serve in the duration
OUTPUT_LENGTH_SEED = 7
_MB = 1024 * 1024


@dataclass(frozen=True)
class SoakConfig:
    """What to soak: the simulator, the closed loop's shape, how long, and how often to sample."""

    duration_s: float = 600.0
    interval_s: float = 10.0
    concurrency: int = DEFAULT_CONCURRENCY
    input_len: int = 256
    output_len: int = 128  # the mean; each prompt's length is drawn from output_len x (1 +- output_spread)
    output_spread: float = 0.5
    sim_url: str = DEFAULT_SIM_URL
    warmup_s: float = 60.0  # RSS growth is counted from the first sample at or after this
    drop_records: bool = False  # release the load runner's records after each sample

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.duration_s < 3 * self.interval_s:
            raise ValueError("the duration must hold at least three sampling intervals")
        if self.warmup_s >= self.duration_s:
            raise ValueError("the warm-up must end before the duration does")
        if not 0 <= self.output_spread < 1:
            raise ValueError("output_spread must be in [0, 1)")

    @property
    def shortest_output(self) -> int:
        """The shortest output length the run asks for."""
        return max(1, math.floor(self.output_len * (1 - self.output_spread)))

    def output_lengths(self, count: int) -> list[int]:
        """`count` output lengths, uniform over output_len x (1 +- output_spread), seeded. Equal
        lengths would keep the streams in lockstep (all sent together, all finished together), so
        that TTFT would measure bursts of simultaneous arrivals rather than a steady load."""
        longest = max(self.shortest_output, math.ceil(self.output_len * (1 + self.output_spread)))
        rng = random.Random(OUTPUT_LENGTH_SEED)
        return [rng.randint(self.shortest_output, longest) for _ in range(count)]

    @property
    def window_intervals(self) -> int:
        """Intervals in the first and in the last window the drift compares: 10 minutes, or a third
        of what follows the warm-up in a shorter run."""
        return max(1, int(min(BASELINE_MAX_S, (self.duration_s - self.warmup_s) / 3) // self.interval_s))

    def scenario(self) -> Scenario:
        """The closed-loop scenario the gate would run (one round of warmup requests)."""
        return Scenario(input_len=self.input_len, output_len=self.output_len, name="soak",
                        concurrency=self.concurrency, num_prompts=DISTINCT_PROMPTS, duration_s=self.duration_s,
                        warmup=self.concurrency, timeout_s=60.0)


@dataclass(frozen=True)
class Interval:
    """One sample: the client process at its end, and the figures of the requests in it.

    Latency samples (ms) are kept for pooling over windows; `run_soak` empties them once an
    interval is in neither window the drift compares.
    """

    start_s: float  # since the load was reached
    end_s: float
    rss_mb: float
    server_rss_mb: float | None
    cpu_cores: float  # process CPU time / wall time over the interval
    server_cpu_cores: float | None
    completed: int
    failed: int
    output_tok_s: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tpot_p50_ms: float | None
    held_records: int  # records the load runner holds in memory at the sample (not spilled)
    held_mb: float  # their estimated memory
    gc_max_ms: float  # the longest garbage collection in the interval (it stops every stream's reads)
    gc_full: int  # full (oldest-generation) collections in the interval
    ttft_samples: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    tpot_samples: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


@dataclass(frozen=True)
class WindowFigures:
    """Figures pooled over consecutive intervals."""

    seconds: float
    output_tok_s: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tpot_p50_ms: float | None
    # CPU per output token (us) of the client and of the simulator: the simulator does the same
    # work per token all along, so a change in its figure is the machine's, not the client's.
    client_us_per_token: float | None = None
    server_us_per_token: float | None = None
    # Where the window's TTFT p99 lies at 95% from its samples alone (order statistics, as if the
    # requests were independent): how far apart two windows' p99s may be by sampling alone.
    ttft_p99_interval_ms: tuple[float, float] | None = None

    def value(self, name: str) -> float | None:
        """A figure by its field name."""
        return float(getattr(self, name)) if getattr(self, name) is not None else None


DRIFT_FIGURES = ("output_tok_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms")


@dataclass(frozen=True)
class SoakSummary:
    """RSS growth and figure drift of a soak, against the targets."""

    rss_base_mb: float
    rss_base_s: float
    rss_last_mb: float
    rss_last_s: float
    held_growth_mb: float  # growth of the records the load runner holds, estimated
    held_growth_records: int
    first: WindowFigures
    last: WindowFigures
    drift_pct: dict[str, float | None]
    completed: int
    failed: int

    @property
    def rss_growth_mb(self) -> float:
        """RSS at the last sample minus RSS at the end of the warm-up."""
        return self.rss_last_mb - self.rss_base_mb

    @property
    def unexplained_growth_mb(self) -> float:
        """RSS growth beyond the records held (what a leak would show as)."""
        return self.rss_growth_mb - self.held_growth_mb

    def per_hour(self, mb: float) -> float:
        """`mb` grown between the two RSS samples, extrapolated linearly to one hour."""
        span = self.rss_last_s - self.rss_base_s
        return mb / span * 3600 if span > 0 else math.inf

    @property
    def rss_ok(self) -> bool:
        """RSS growth under the target (MB per hour)."""
        return self.per_hour(self.rss_growth_mb) < RSS_TARGET_MB_PER_HOUR

    @property
    def no_leak(self) -> bool:
        """RSS growth beyond the records held under the target (MB per hour)."""
        return self.per_hour(self.unexplained_growth_mb) < RSS_TARGET_MB_PER_HOUR

    def drift_ok(self, name: str) -> bool:
        """The figure's drift within the target (a figure missing in either window fails)."""
        drift = self.drift_pct.get(name)
        return drift is not None and abs(drift) <= DRIFT_TARGET_PCT

    @property
    def passed(self) -> bool:
        """Every target met, and no request failed."""
        return self.rss_ok and self.no_leak and self.failed == 0 and all(self.drift_ok(n) for n in DRIFT_FIGURES)


@dataclass
class SoakRun:
    """What `run_soak` saw: the intervals, the whole run's counts and client health, the records file."""

    intervals: list[Interval]
    finished: int  # every request the client finished, warmup included (one records.jsonl line each)
    failed: int
    health: ClientHealth
    records_path: Path
    sim_url: str
    ran_out: bool  # the planned requests ran out before the duration did
    warnings: tuple[str, ...] = ()  # the load runner's (a failed spill), those of dropped records included


# ---------------------------------------------------------------------------------------------
# Pure computation


def interval_metrics_input(finished: Sequence[RequestRecord], in_flight: Sequence[RequestRecord],
                           start_ns: int, end_ns: int) -> tuple[list[RequestRecord], RunTimeline]:
    """Records and timeline that make `compute_run_metrics` figure one interval: the interval is
    the steady window, in-flight copies (as `LoadRunner.in_flight_snapshot` makes) add their tokens
    so far, and the finished requests add the rest of theirs."""
    timeline = RunTimeline(mode="closed", t_start=start_ns, t_load_reached=start_ns, t_drain_start=end_ns,
                           t_end=end_ns)
    return [*finished, *in_flight], timeline


def pooled(intervals: Sequence[Interval]) -> WindowFigures:
    """Figures over consecutive intervals: tokens over their total time, latency percentiles of
    their pooled samples."""
    seconds = sum(i.end_s - i.start_s for i in intervals)
    tokens = sum((i.output_tok_s or 0.0) * (i.end_s - i.start_s) for i in intervals)
    ttft_samples = np.concatenate([i.ttft_samples for i in intervals] or [np.zeros(0)])
    ttft = LatencySummary.of(ttft_samples)
    tpot = LatencySummary.of(np.concatenate([i.tpot_samples for i in intervals] or [np.zeros(0)]))
    client_cpu = sum(i.cpu_cores * (i.end_s - i.start_s) for i in intervals)
    server_cpu = (None if any(i.server_cpu_cores is None for i in intervals)
                  else sum((i.server_cpu_cores or 0.0) * (i.end_s - i.start_s) for i in intervals))
    return WindowFigures(seconds=seconds, output_tok_s=tokens / seconds if seconds > 0 else None,
                         ttft_p50_ms=ttft.p50, ttft_p99_ms=ttft.p99, tpot_p50_ms=tpot.p50,
                         client_us_per_token=client_cpu / tokens * 1e6 if tokens > 0 else None,
                         server_us_per_token=(server_cpu / tokens * 1e6 if tokens > 0 and server_cpu is not None
                                              else None),
                         ttft_p99_interval_ms=percentile_interval(ttft_samples, 0.99))


def percentile_interval(samples: np.ndarray, p: float, confidence: float = 0.95) -> tuple[float, float] | None:
    """A two-sided `confidence` interval of the p-quantile of independent samples (order statistics,
    each side at (1 + confidence) / 2); None when there are too few samples for either side."""
    low_rank, high_rank = quantile_bound_ranks(len(samples), p, (1 + confidence) / 2)
    if low_rank is None or high_rank is None:
        return None
    ordered = np.sort(samples)
    return float(ordered[low_rank - 1]), float(ordered[high_rank - 1])


def first_window(intervals: Sequence[Interval], count: int, after_s: float = 0.0) -> list[Interval]:
    """The first `count` intervals starting at or after `after_s`."""
    return [i for i in intervals if i.start_s >= after_s - 1e-6][:count]


def last_window(intervals: Sequence[Interval], count: int) -> list[Interval]:
    """The last `count` intervals."""
    return list(intervals[-count:]) if count > 0 else []


def drift_pct(first: WindowFigures, last: WindowFigures) -> dict[str, float | None]:
    """(last - first) / first in %, per figure (None when either is missing or first is 0)."""
    out: dict[str, float | None] = {}
    for name in DRIFT_FIGURES:
        a, b = first.value(name), last.value(name)
        out[name] = None if a is None or b is None or a == 0 else 100.0 * (b - a) / a
    return out


def summarize(intervals: Sequence[Interval], config: SoakConfig) -> SoakSummary:
    """RSS growth from the end of the warm-up to the last sample, and the figures of the last window
    against those of the first window after the warm-up (`config.window_intervals` each)."""
    if not intervals:
        raise ValueError("no interval was sampled")
    base = next((i for i in intervals if i.end_s >= config.warmup_s - 1e-6), intervals[0])
    last = intervals[-1]
    first_figures = pooled(first_window(intervals, config.window_intervals, base.end_s))
    last_figures = pooled(last_window(intervals, config.window_intervals))
    return SoakSummary(
        rss_base_mb=base.rss_mb, rss_base_s=base.end_s, rss_last_mb=last.rss_mb, rss_last_s=last.end_s,
        held_growth_mb=last.held_mb - base.held_mb, held_growth_records=last.held_records - base.held_records,
        first=first_figures, last=last_figures,
        drift_pct=drift_pct(first_figures, last_figures),
        completed=sum(i.completed for i in intervals), failed=sum(i.failed for i in intervals),
    )


def request_budget(config: SoakConfig, sim: SimConfig) -> int:
    """Measured requests to plan: more than the simulator can complete in the duration (no request
    is faster than its output length in decode steps), so the loop never runs dry."""
    fastest_s = config.shortest_output / sim.tokens_per_step * sim.step_base_ms / 1000
    per_slot = config.duration_s / fastest_s if fastest_s > 0 else config.duration_s * 1000
    return config.concurrency * math.ceil(per_slot * REQUEST_MARGIN) + config.concurrency


# ---------------------------------------------------------------------------------------------
# Measuring


def rss_mb(pid: int | None = None) -> float | None:
    """Resident set size of a process (this one by default) from /proc, in MB; None if unreadable."""
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def steady_plan(config: SoakConfig, target: ServingTarget, tokenizer: TextTokenizer, total: int) -> RequestPlan:
    """The scenario's prompt plan with the config's output lengths, its measured prompts repeated
    under fresh indices up to `total` requests (building every prompt of an hour-long run with the
    tokenizer would take minutes)."""
    scenario = config.scenario()
    plan = plan_requests(scenario, target, tokenizer, seed=prompt_seed("soak", scenario.ident, scenario.seed))
    lengths = config.output_lengths(len(plan.warmup) + len(plan.measured))
    warmup = [dataclasses.replace(spec, max_tokens=n) for spec, n in zip(plan.warmup, lengths)]
    base = [dataclasses.replace(spec, max_tokens=n) for spec, n in zip(plan.measured, lengths[len(warmup):])]
    measured = [dataclasses.replace(base[i % len(base)], index=len(warmup) + i) for i in range(total)]
    return RequestPlan(warmup, measured, plan.facts)


class _Sink:
    """Takes each finished record: appends it to records.jsonl and keeps it until the next sample."""

    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer
        self.pending: list[RequestRecord] = []
        self.finished = 0
        self.measured = 0
        self.failed = 0

    def __call__(self, record: RequestRecord) -> None:
        self.writer.write(record)
        self.finished += 1
        self.failed += 0 if record.success else 1
        if not record.warmup:
            self.measured += 1
            self.pending.append(record)

    def take(self) -> list[RequestRecord]:
        taken, self.pending = self.pending, []
        return taken


class _GcPauses:
    """Times this process's garbage collections (a `gc.callbacks` entry while installed)."""

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self.full = 0
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
            return
        self.longest_ms = max(self.longest_ms, (time.perf_counter_ns() - self._started) / 1e6)
        self.full += 1 if info.get("generation") == 2 else 0

    def take(self) -> tuple[float, int]:
        """The longest pause (ms) and the full collections since the last take."""
        taken = self.longest_ms, self.full
        self.longest_ms, self.full = 0.0, 0
        return taken


@dataclass(frozen=True)
class _Reading:
    """The clocks at one sampling instant."""

    ns: int  # perf_counter_ns
    cpu_s: float  # this process
    server_cpu_s: float | None

    @classmethod
    def now(cls, server_pid: int) -> _Reading:
        return cls(time.perf_counter_ns(), time.process_time(), cpu_seconds(server_pid))

    def server_cores_since(self, earlier: _Reading) -> float | None:
        if self.server_cpu_s is None or earlier.server_cpu_s is None:
            return None
        return (self.server_cpu_s - earlier.server_cpu_s) / ((self.ns - earlier.ns) / 1e9)


@dataclass
class _Sampler:
    """Samples the client every interval from the moment the load is reached."""

    config: SoakConfig
    runner: LoadRunner
    sink: _Sink
    server_pid: int
    on_interval: Callable[[Interval], None]
    intervals: list[Interval] = field(default_factory=list)
    gc_pauses: _GcPauses = field(default_factory=_GcPauses)
    dropped_warnings: tuple[str, ...] = ()  # of the held records released after a sample

    async def run(self) -> None:
        gc.callbacks.append(self.gc_pauses)
        try:
            await self._sample_every_interval()
        finally:
            gc.callbacks.remove(self.gc_pauses)

    async def _sample_every_interval(self) -> None:
        while self.runner.timeline.t_load_reached is None:
            await asyncio.sleep(0.005)
        t0 = self.runner.timeline.t_load_reached
        previous = dataclasses.replace(_Reading.now(self.server_pid), ns=t0)
        for k in range(1, int(self.config.duration_s // self.config.interval_s) + 1):
            await asyncio.sleep(max(0.0, (t0 + k * self.config.interval_s * 1e9 - time.perf_counter_ns()) / 1e9))
            reading = _Reading.now(self.server_pid)
            interval = await self._sample(t0, previous, reading)
            self._keep(interval)
            self.on_interval(interval)
            previous = reading

    async def _sample(self, t0: int, start: _Reading, end: _Reading) -> Interval:
        """Take the interval's records on the event loop (nothing finishes meanwhile), figure them
        in a worker thread (never on the loop: it would delay every stream's reads)."""
        finished, in_flight = self.sink.take(), self.runner.in_flight_snapshot()
        held = self.runner.records
        rss, held_records, held_mb = rss_mb() or 0.0, len(held) - held.spilled, held.memory_bytes / _MB
        gc_max_ms, gc_full = self.gc_pauses.take()
        records, timeline = interval_metrics_input(finished, in_flight, start.ns, end.ns)
        metrics = await asyncio.get_running_loop().run_in_executor(None, compute_run_metrics, records, timeline)
        return Interval(
            start_s=(start.ns - t0) / 1e9, end_s=(end.ns - t0) / 1e9, rss_mb=rss, server_rss_mb=rss_mb(self.server_pid),
            cpu_cores=(end.cpu_s - start.cpu_s) / ((end.ns - start.ns) / 1e9),
            server_cpu_cores=end.server_cores_since(start), completed=metrics.completed, failed=metrics.failed,
            output_tok_s=metrics.output_throughput, ttft_p50_ms=metrics.ttft_ms.p50, ttft_p99_ms=metrics.ttft_ms.p99,
            tpot_p50_ms=metrics.tpot_ms.p50, held_records=held_records, held_mb=held_mb, gc_max_ms=gc_max_ms,
            gc_full=gc_full, ttft_samples=metrics.samples["ttft_ms"], tpot_samples=metrics.samples["tpot_ms"])

    def _keep(self, interval: Interval) -> None:
        """Append the interval; drop the samples of the one that just left the last window, unless
        it may be in the first (which starts after the warm-up)."""
        self.intervals.append(interval)
        config = self.config
        leaving = len(self.intervals) - config.window_intervals - 1
        first_ends_s = config.warmup_s + (config.window_intervals + 1) * config.interval_s
        if leaving >= 0 and self.intervals[leaving].start_s > first_ends_s:
            old = self.intervals[leaving]
            self.intervals[leaving] = dataclasses.replace(old, ttft_samples=np.zeros(0), tpot_samples=np.zeros(0))
        if self.config.drop_records:
            self.dropped_warnings += self.runner.records.warnings
            self.runner.records = HeldRecords()


async def _drive(config: SoakConfig, target: ServingTarget, plan: RequestPlan, tokenizer: TextTokenizer,
                 writer: RecordWriter, server_pid: int, on_interval: Callable[[Interval], None]
                 ) -> tuple[LoadResult, _Sampler, _Sink]:
    """The gate's own load drive (`serving.measure.drive`) with a sampler beside the load runner."""
    sink = _Sink(writer)
    samplers: list[_Sampler] = []

    async def sample(runner: LoadRunner) -> None:
        samplers.append(_Sampler(config, runner, sink, server_pid, on_interval))
        await samplers[0].run()

    run = LoadRun(scenario=config.scenario(), target=target, plan=plan, request_prefix="soak", tokenizer=tokenizer)
    result = await drive(run, sink, alongside=sample)
    return result, samplers[0], sink


def run_soak(config: SoakConfig, results_dir: Path, on_interval: Callable[[Interval], None] = lambda _: None
             ) -> SoakRun:
    """Start the simulator, hold the closed loop for `config.duration_s`, sample every interval.

    Records go to `results_dir/records.jsonl` (one line per finished request, warmup included) and
    the simulator's log to `results_dir/sim.log`. `on_interval` hears of each sample as it is taken.
    """
    sim_config = parse_sim_url(config.sim_url)
    tokenizer = embedded_tokenizer()
    results_dir.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(results_dir.parent, results_dir.name)
    with start_sim(sim_config, log_path=results_dir / "sim.log") as sim:
        info = probe_endpoint(sim.base_url, model=None, api_key=None, simulated=True)
        target = ServingTarget(base_url=info.base_url, model=info.model, api="completions", simulated=True,
                               has_tokenize=info.has_tokenize, tls=info.tls,
                               deadlines=Deadlines().capped(config.scenario().timeout_s or Deadlines().total_s))
        plan = steady_plan(config, target, tokenizer, request_budget(config, sim_config))
        writer = RecordWriter(folder, "benchmarks/soak.py", config.scenario().ident)
        try:
            result, sampler, sink = run_async(_drive(config, target, plan, tokenizer, writer, sim.pid, on_interval))
        finally:
            writer.close()
    return SoakRun(intervals=sampler.intervals, finished=sink.finished, failed=sink.failed,
                   health=ClientHealth.of(result.health), records_path=folder.records_path, sim_url=config.sim_url,
                   ran_out=sink.measured >= len(plan.measured),
                   warnings=tuple(dict.fromkeys(sampler.dropped_warnings + result.warnings)))


def count_lines(path: Path) -> int:
    """Lines in a file, read in blocks (records files grow to hundreds of MB)."""
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def records_file_mb(path: Path) -> float:
    """Size of the records file in MB."""
    return os.path.getsize(path) / _MB
