"""Measure one scenario against the endpoint: build its requests, drive the load, keep the records.

The I/O of the serving gate: request records are appended to the run's `records.jsonl` as they
finish (a killed run keeps what it measured), and a progress line is reported now and then.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..context import SessionDeadline
from ..credentials import KeyLike
from ..fingerprint import redacted_url
from ..report.progress import PLAIN_EVERY_S, ProgressCounts, ProgressOutput, ProgressWatch
from ..report.store import RunFolder
from ..run_async import run_async
from ..tls import SYSTEM, TlsPolicy
from ..tokenizers import TextTokenizer
from .endpoint_api import EndpointError, tokenize
from .load import LoadResult, LoadRunner, LoadShape, StartBarrier, StopCheck
from .load_split import MODES_SHARED, LoadPart, split_load, worker_count
from .records import ApiKind, Deadlines, RequestRecord, RequestSpec
from .replicas import warmup_count
from .routed import ReplicaClients
from .spec import DEFAULT_ROUTING, Scenario
from .workload import PromptBuilder, WorkloadParams, build_prompt_set, prompt_set_hash, to_requests

ProgressFn = Callable[[str], None]
ALIGNMENT_PROBE = "The quick brown fox jumps over the lazy dog"


@dataclass(frozen=True)
class ServingTarget:
    """Where and how to send: the checked endpoint, the profile's topology, the request deadlines."""

    base_url: str
    model: str
    api: ApiKind
    api_key: KeyLike = field(default=None, repr=False)
    simulated: bool = False
    has_tokenize: bool = False
    nodes: int = 1
    devices_per_node: int = 1
    deadlines: Deadlines = Deadlines()
    tls: TlsPolicy = SYSTEM
    # One deployment behind several URLs (see `replicas`): every URL the requests are routed over
    # when there are several (`base_url` is the first), and URLs only woken up before measuring.
    replicas: tuple[str, ...] = ()
    warmup_urls: tuple[str, ...] = ()
    routing: str = DEFAULT_ROUTING

    def replica_urls(self) -> tuple[str, ...]:
        """The URLs the measured requests go to: the replicas, else `base_url` alone."""
        return self.replicas or (self.base_url,)

    def endpoint_urls(self) -> tuple[str, ...]:
        """Every URL of the deployment, numbered as the records' `endpoint`: replicas, then warm-up only."""
        return self.replica_urls() + self.warmup_urls

    def to_json(self) -> dict[str, Any]:
        """The fields a result depends on, as plain JSON (never the API key, the URLs' credentials nor
        the TLS policy). A target of one URL has no replica keys."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _TARGET_FIELDS}
        out["base_url"] = redacted_url(self.base_url)
        out["deadlines"] = self.deadlines.to_json()
        if len(self.replicas) > 1:
            out.update(replicas=[redacted_url(url) for url in self.replicas], routing=self.routing)
        if self.warmup_urls:
            out["warmup_urls"] = [redacted_url(url) for url in self.warmup_urls]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ServingTarget":
        """Inverse of `to_json`; a line written before deadlines existed gives its `timeout_s` as the total."""
        values = {name: data[name] for name in _TARGET_FIELDS if name in data}
        if isinstance(data.get("deadlines"), Mapping):
            deadlines = Deadlines.from_json(data["deadlines"])
        else:
            deadlines = Deadlines(total_s=float(data["timeout_s"])) if data.get("timeout_s") else Deadlines()
        return cls(**values, deadlines=deadlines, replicas=tuple(data.get("replicas") or ()),
                   warmup_urls=tuple(data.get("warmup_urls") or ()), routing=str(data.get("routing") or DEFAULT_ROUTING))


_TARGET_FIELDS = ("base_url", "model", "api", "simulated", "has_tokenize", "nodes", "devices_per_node")


@dataclass(frozen=True)
class RequestPlan:
    """The requests of one scenario, decided before the run, and facts about its prompt set."""

    warmup: list[RequestSpec]
    measured: list[RequestSpec]
    facts: dict[str, Any]  # prompt_set_hash, prompt_seed, prompt_alignment, count_offset


def prompt_seed(profile: str, scenario_id: str, seed: int) -> int:
    """The prompt set's seed: different for every scenario (scenarios sharing an input length must
    not send the same prompts, or a server's prefix cache serves the second from the first)."""
    digest = hashlib.sha256(f"{profile}/{scenario_id}/{seed}".encode()).hexdigest()
    return int(digest[:12], 16)


def count_offset(target: ServingTarget, builder: PromptBuilder) -> tuple[int, str]:
    """Tokens the server counts beyond the client's count (BOS, template differences), and how
    the prompt lengths were aligned."""
    if not target.has_tokenize:
        return 0, "client tokenizer (server has no /tokenize)"
    prompt: Any = [{"role": "user", "content": ALIGNMENT_PROBE}] if target.api == "chat" else ALIGNMENT_PROBE
    try:
        server = tokenize(target.base_url, target.model, prompt, target.api_key, tls=target.tls)
    except EndpointError as exc:
        return 0, f"client tokenizer (/tokenize failed: {exc})"
    if server is None:
        return 0, "client tokenizer (server has no /tokenize)"
    return server - builder.count(ALIGNMENT_PROBE), "aligned with the server's /tokenize"


def measured_count(scenario: Scenario) -> int:
    """Measured requests of a scenario: num_prompts, or batch_size x num_iters for a latency batch."""
    if scenario.mode == "batch":
        return (scenario.batch_size or 1) * (scenario.num_iters or 1)
    return scenario.num_prompts


def plan_requests(scenario: Scenario, target: ServingTarget, tokenizer: TextTokenizer | None,
                  seed: int | None = None) -> RequestPlan:
    """Warmup and measured requests for `scenario` (raises `WorkloadError` when the prompt set
    cannot be built as asked). A target of several URLs gets enough warm-up requests to wake each
    (`replicas.warmup_count`)."""
    builder = PromptBuilder(tokenizer, target.api) if tokenizer is not None else None
    alignment = "none"
    if builder is not None:
        builder.count_offset, alignment = count_offset(target, builder)
    warmup = warmup_count(scenario.warmup, len(target.replica_urls()), len(target.warmup_urls))
    params = WorkloadParams(
        dataset=scenario.dataset, count=warmup + measured_count(scenario), input_len=scenario.input_len,
        output_len=scenario.output_len, seed=scenario.seed if seed is None else seed, prefix_len=scenario.prefix_len,
        dataset_path=scenario.dataset_path, api=target.api,
        count_offset=builder.count_offset if builder is not None else 0,
    )
    items = build_prompt_set(params, builder)
    specs = to_requests(items, api=target.api, model=target.model, warmup=warmup,
                        force_output_len=scenario.force_output_len)
    facts = {"prompt_set_hash": prompt_set_hash(items), "prompt_seed": params.seed,
             "prompt_alignment": alignment, "count_offset": params.count_offset}
    return RequestPlan(specs[:warmup], specs[warmup:], facts)


class RecordWriter:
    """Appends each record to records.jsonl as it finishes: one write() per record, no buffering,
    so a killed run keeps every request it completed."""

    def __init__(self, folder: RunFolder, nodeid: str, scenario_id: str) -> None:
        self.nodeid = nodeid
        self.scenario_id = scenario_id
        folder.path.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(folder.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: RequestRecord) -> None:
        """Append one record, tagged with the test and the scenario."""
        line = record.to_json_dict()
        line["nodeid"] = self.nodeid
        line["scenario"] = self.scenario_id
        # No NaN-scrubbing pass: a record holds only ints, strings, bools and lists of them.
        os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8"))

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Progress:
    """Progress of one scenario's measurement: `update` counts each finished request (on the event
    loop, so it only counts); the output's watch samples the counts on a timer and shows them
    (a live display on a terminal, plain lines otherwise), and `finish` writes the closing line."""

    def __init__(self, label: str, total: int, emit: ProgressFn | None, every_s: float | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.verdict: str | None = None  # the early-stop look's verdict so far
        self.t0 = time.perf_counter()
        self._watch: ProgressWatch | None = None
        if emit is not None:
            output = emit if isinstance(emit, ProgressOutput) else ProgressOutput(emit, every_s=every_s or PLAIN_EVERY_S)
            self._watch = output.watch(label, total, self.counts)

    def update(self, record: RequestRecord) -> None:
        """Count a finished record (warmup is not counted)."""
        if record.warmup:
            return
        if self.done == 0 and record.t_send:
            self.t0 = record.t_send / 1e9  # the measured phase starts here (same perf_counter clock)
        self.done += 1
        self.failed += record.error_kind is not None  # a request left in flight has none
        self.tokens += record.n_tokens

    def look(self, verdict: str) -> None:
        """The verdict of the latest early-stop look (shown while the run goes on)."""
        self.verdict = verdict

    def counts(self, now: float | None = None) -> ProgressCounts:
        """The counts so far, elapsed up to `now` (perf_counter seconds)."""
        elapsed = (time.perf_counter() if now is None else now) - self.t0
        return ProgressCounts(self.label, self.total, self.done, self.failed, self.tokens, max(0.0, elapsed),
                              self.verdict)

    def finish(self) -> None:
        """Stop following and write the closing line (once)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()


def load_shape(scenario: Scenario) -> LoadShape:
    """How the scenario paces its requests."""
    return LoadShape(
        mode=scenario.mode, concurrency=scenario.concurrency, request_rate=scenario.request_rate,
        arrival=scenario.arrival, burstiness=scenario.burstiness, max_concurrency=scenario.max_concurrency,
        batch_size=scenario.batch_size, num_iters=scenario.num_iters, duration_s=scenario.duration_s,
        seed=scenario.seed,
    )


def pool_size(scenario: Scenario, measured: int) -> int:
    """Connections the client may hold: never fewer than requests that may be in flight at once
    (a smaller pool would make requests wait for a connection after t_send, inside their TTFT)."""
    if scenario.mode == "batch":
        return scenario.batch_size or 1
    if scenario.mode == "open":
        return scenario.max_concurrency or max(1, measured)
    return scenario.concurrency or 1


@dataclass(frozen=True)
class LoadRun:
    """One measured run as the gate drives it: what to send, where, and who hears about it."""

    scenario: Scenario
    target: ServingTarget
    plan: RequestPlan
    request_prefix: str  # request ids are `<prefix>-<index>`
    tokenizer: TextTokenizer | None = None  # counts output tokens of each stream, when given
    should_stop: StopCheck | None = None  # the early-stop look
    check_every: int = 50  # measured records between looks
    session_deadline: SessionDeadline | None = None  # the run is cut when it passes


async def drive(run: LoadRun, on_record: Callable[[RequestRecord], None],
                alongside: Callable[[LoadRunner], Awaitable[Any]] | None = None,
                part: LoadPart | None = None, start: StartBarrier | None = None) -> LoadResult:
    """Drive `run` through the streaming client on this event loop; `alongside(runner)`, when given,
    runs beside the load on the same loop (a sampler watching the runner). In a load worker, `part`
    is its share of the plan (the coordinator counts failures and looks) and `start` the barrier
    before the measured phase.

    The run is cut (nothing more sent, requests in flight cancelled and kept as in flight) once its
    failures blow the scenario's error budget, or when the session deadline passes.
    """
    scenario, target, tokenizer = run.scenario, run.target, run.tokenizer
    count_tokens = (lambda text: len(tokenizer.encode(text))) if tokenizer is not None else None
    async with ReplicaClients(target, pool=pool_size(scenario, len(run.plan.measured))) as clients:

        async def send(spec: RequestSpec, t_queued: int, on_start: Callable[[RequestRecord], None]) -> RequestRecord:
            return await clients.send(spec, request_id=f"{run.request_prefix}-{spec.index}", t_queued=t_queued,
                                      count_tokens=count_tokens, continuous_usage=scenario.continuous_usage,
                                      on_start=on_start)

        if part is None:
            runner = LoadRunner(send, load_shape(scenario), on_record=on_record, should_stop=run.should_stop,
                                check_every=run.check_every, error_budget=scenario.error_budget)
            warmup, measured = run.plan.warmup, run.plan.measured
        else:
            runner = LoadRunner(send, part.shape, on_record=on_record, schedule=part.schedule)
            warmup, measured = list(part.warmup), list(part.measured)
        deadline = run.session_deadline
        timer = None if deadline is None else asyncio.get_running_loop().call_later(
            max(0.0, deadline.left_s()), runner.cut, deadline.reached())
        try:
            if alongside is None:
                return await runner.run(warmup, measured, start)
            result, _ = await asyncio.gather(runner.run(warmup, measured, start), alongside(runner))
            return result
        finally:
            if timer is not None:
                timer.cancel()


def cpus_for_load() -> int:
    """CPUs one scenario's load may use: those this process may run on, shared with the other
    pytest-xdist workers measuring beside it."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no CPU affinity on this platform (macOS)
        cpus = os.cpu_count() or 1
    xdist_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return max(1, cpus // max(1, xdist_workers))


def run_load(run: LoadRun, writer: RecordWriter, progress: Progress, workers: int | None = 1,
             cluster: str | None = None) -> LoadResult:
    """Send the plan's requests (warmup, then measured) and return what the client saw; every
    record goes to `writer` and `progress` as it finishes. `workers`: load processes to share the
    load among (None: one per usable CPU; see `load_split.worker_count`); `cluster`: a Ray cluster
    address, whose client nodes run them (a batch scenario stays in this process)."""

    def on_record(record: RequestRecord) -> None:
        writer.write(record)
        progress.update(record)

    shape = load_shape(run.scenario)
    count = 1 if workers == 1 else worker_count(workers, shape, len(run.plan.measured), cpus_for_load())
    try:
        if cluster is not None and shape.mode in MODES_SHARED:
            from .ray_link import run_on_cluster  # imports Ray: only loaded when asked for

            return run_on_cluster(cluster, run, workers, on_record)
        if count > 1:
            from .load_workers import run_with_workers  # spawns processes: only loaded when asked for

            return run_with_workers(run, split_load(shape, run.plan.warmup, run.plan.measured, count), on_record)
        return run_async(drive(run, on_record))
    finally:
        writer.close()
        progress.finish()
