"""Load workers as Ray actors on the client nodes of a Ray cluster (`--deepseek-load-cluster`).

The pytest process stays the coordinator (`load_workers.coordinate`): it deals the scenario out,
gives the start time and merges what comes back; each worker is an async Ray actor that runs
`load_workers.serve_job` on its own event loop. Coordinator -> actor messages are actor calls;
actor -> coordinator messages wait in the actor until a reader thread of the coordinator takes
them with a long poll (a blocking `ray.get` off the coordinator's event loop).

Client nodes: the alive nodes that offer the custom resource `deepseek_client`
(`ray start ... --resources='{"deepseek_client": 4}'`: that node takes up to 4 load workers); when
no node offers it, every alive node. A worker takes one CPU (and one `deepseek_client` on a
labelled cluster); the workers of a scenario are one placement group spread over the client nodes
(SPREAD: as many distinct nodes as there are). `--deepseek-load-workers auto` is one worker per
CPU the client nodes offer.

Clocks: perf_counter_ns of another machine counts from another origin. Each actor's clock offset is
measured before it starts (`clock_sync`, a few round trips) and again when it ends (the drift);
the coordinator shifts every time the actor sends by that offset, so per-request durations are
one machine's clock and window figures are on the coordinator's. The offset, its bound and the
drift go into each worker's client health (summary.json `client.workers`, the scenario log).

Ray is imported only here, and this module only when the option is given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..settings import RAY_INSTALL_HINT
from .clock_sync import ROUND_TRIPS, ClockOffset, ClockSample, drift_ns, estimate_offset
from .load import ClientHealthSample, LoadResult, cut_short_text
from .load_split import split_load, worker_count
from .load_workers import DONE, FAILED, GONE, WorkerJob, WorkerOutcome, run_with_workers, serve_job
from .measure import LoadRun, load_shape
from .records import RequestRecord, RunTimeline

CLIENT_RESOURCE = "deepseek_client"  # the custom resource that marks a node as a client node
PROBE_TIMEOUT_S = 10.0  # a TCP connection to the cluster's address must open within this
PLACE_TIMEOUT_S = 60.0  # the placement group (and each actor in it) must be up by then
POLL_S = 0.5  # an actor holds a poll open this long when it has nothing to send
ANSWER_GRACE_S = 60.0  # an actor that answers no call for this long (beyond POLL_S) is taken as gone
CLOSE_WAIT_S = 5.0
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps loopback addresses as they are

_joined: list[str] = []  # the cluster address this process joined (one per process)
_refused: dict[str, str] = {}  # address -> why it could not be joined (said again, not tried again)


class ClusterError(Exception):
    """The Ray cluster cannot be used (Ray missing, no connection, no room for the workers)."""


def import_ray() -> Any:
    """The `ray` module, or a ClusterError naming the extra that installs it."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(f"--deepseek-load-cluster needs Ray ({exc}): {RAY_INSTALL_HINT}") from exc
    return ray


def connect(address: str) -> Any:
    """Join the cluster at `address` (`auto`, `ray://HOST:PORT` or a GCS `HOST:PORT`) once per
    process; never another address, never a new local cluster."""
    if address in _refused:
        raise ClusterError(_refused[address])
    if _joined and _joined[0] != address:
        raise ClusterError(f"this process already joined the Ray cluster at {_joined[0]}, not {address}")
    host_port = _host_port(address)
    if host_port is not None:
        _probe(address, *host_port)
        if _is_loopback(host_port[0]):
            # Ray takes a loopback address for "this node" and swaps in the node's network address;
            # this (Ray's own switch) keeps every connection on loopback, as the cluster was started.
            os.environ.setdefault(LOOPBACK_SWITCH, "0")
    ray = import_ray()
    if ray.is_initialized() and not _joined:
        raise ClusterError(f"Ray was already initialised in this process (not by --deepseek-load-cluster): "
                           f"it may be another cluster than {address}")
    try:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... with a message
        _refused[address] = f"could not join the Ray cluster at {address}: {type(exc).__name__}: {exc}"
        raise ClusterError(_refused[address]) from exc
    if not _joined:
        _joined.append(address)
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """HOST and PORT of `ray://HOST:PORT` or `HOST:PORT` (None for `auto`)."""
    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _probe(address: str, host: str, port: int) -> None:
    """Fail fast when nothing listens at the cluster's address (Ray itself retries for minutes)."""
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        _refused[address] = f"could not join the Ray cluster at {address}: nothing answers there ({exc})"
        raise ClusterError(_refused[address]) from exc


def client_nodes(nodes: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The alive nodes load workers may run on, and whether they were marked with CLIENT_RESOURCE."""
    alive = [n for n in nodes if n.get("Alive")]
    marked = [n for n in alive if (n.get("Resources") or {}).get(CLIENT_RESOURCE)]
    return (marked, True) if marked else (alive, False)


def worker_bundle(marked: bool) -> dict[str, float]:
    """What one load worker takes on its node."""
    return {"CPU": 1.0, CLIENT_RESOURCE: 1.0} if marked else {"CPU": 1.0}


def capacity(nodes: Sequence[dict[str, Any]], marked: bool) -> int:
    """How many load workers the client nodes hold (their CPUs, and their CLIENT_RESOURCE when marked)."""
    total = 0
    for node in nodes:
        resources = node.get("Resources") or {}
        held = float(resources.get("CPU", 0))
        if marked:
            held = min(held, float(resources.get(CLIENT_RESOURCE, 0)))
        total += int(held)
    return total


# ---------------------------------------------------------------------------------------------
# The actor


class LoadActor:
    """A load worker inside a Ray actor (async: every method runs on the actor's one event loop)."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[tuple[Any, ...]] | None = None
        self._wake: asyncio.Event | None = None
        self._outbox: list[tuple[Any, ...]] = []
        self._task: asyncio.Task[None] | None = None

    def _queues(self) -> tuple[asyncio.Queue[tuple[Any, ...]], asyncio.Event]:
        if self._inbox is None or self._wake is None:
            self._inbox, self._wake = asyncio.Queue(), asyncio.Event()
        return self._inbox, self._wake

    async def where(self) -> dict[str, Any]:
        """Where this actor runs."""
        import ray

        return {"host": socket.gethostname(), "pid": os.getpid(), "ip": ray.util.get_node_ip_address()}

    async def clock(self) -> int:
        """This machine's perf_counter_ns."""
        return time.perf_counter_ns()

    async def start(self, job: WorkerJob) -> None:
        """Start running `job`; returns at once."""
        inbox, wake = self._queues()

        def emit(message: tuple[Any, ...]) -> None:
            self._outbox.append(message)
            wake.set()

        async def serve() -> None:
            try:
                await serve_job(job, inbox, emit)
            except Exception:  # reported to the coordinator, whatever it was
                emit((FAILED, traceback.format_exc()))

        self._task = asyncio.ensure_future(serve())

    async def send(self, message: tuple[Any, ...]) -> None:
        """A message from the coordinator (before `start`, it waits in the inbox)."""
        self._queues()[0].put_nowait(message)

    async def poll(self, wait_s: float) -> list[tuple[Any, ...]]:
        """The messages queued for the coordinator, waiting up to `wait_s` for one."""
        _, wake = self._queues()
        if not self._outbox:
            try:
                await asyncio.wait_for(wake.wait(), wait_s)
            except asyncio.TimeoutError:
                pass
        wake.clear()
        out, self._outbox = self._outbox, []
        return out


# ---------------------------------------------------------------------------------------------
# The coordinator's side


class RayLink:
    """A `WorkerLink` to a load worker in a Ray actor, placed in bundle `index` of `placement`."""

    def __init__(self, job: WorkerJob, placement: Any, bundle: dict[str, float]) -> None:
        self.index = job.part.index
        self.clock_offset_ns = 0
        self.where = f"ray actor {self.index}"
        self.clock: ClockOffset | None = None
        self._job = job
        self._placement = placement
        self._bundle = bundle
        self._ray = import_ray()
        self._actor: Any = None
        self._reader: threading.Thread | None = None
        self._closing = False

    def start(self, deliver: Callable[[int, tuple[Any, ...]], None]) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = PlacementGroupSchedulingStrategy(self._placement, placement_group_bundle_index=self.index)
        resources = {k: v for k, v in self._bundle.items() if k != "CPU"}
        self._actor = self._ray.remote(LoadActor).options(
            num_cpus=self._bundle.get("CPU", 1.0), resources=resources, scheduling_strategy=strategy,
            max_restarts=0).remote()
        self._reader = threading.Thread(target=self._read, args=(deliver,), daemon=True,
                                        name=f"deepseek-ray-link-{self.index}")
        self._reader.start()

    def _call(self, method: Any, *args: Any, timeout: float = ANSWER_GRACE_S) -> Any:
        return self._ray.get(method.remote(*args), timeout=timeout)

    def _read(self, deliver: Callable[[int, tuple[Any, ...]], None]) -> None:
        """Place the actor, measure its clock, start its job, then pass on what it sends."""
        try:
            place = self._call(self._actor.where, timeout=PLACE_TIMEOUT_S)
            self.where = f"ray actor {self.index} on {place['host']} ({place['ip']}, pid {place['pid']})"
            self.clock = self.measure_clock()
            self.clock_offset_ns = self.clock.offset_ns
            self._call(self._actor.start, self._job)
            while True:
                for message in self._call(self._actor.poll, POLL_S, timeout=POLL_S + ANSWER_GRACE_S):
                    if message[0] == DONE:
                        self._stamp(message[1])
                    deliver(self.index, message)
                    if message[0] in (DONE, FAILED):
                        return
        except Exception as exc:  # the actor died, its node went away, or it stopped answering
            if not self._closing:
                deliver(self.index, (GONE, f"{self.where} is gone: {type(exc).__name__}: {exc}"))

    def measure_clock(self) -> ClockOffset:
        """The actor's clock minus ours, from ROUND_TRIPS timed calls."""
        samples = []
        for _ in range(ROUND_TRIPS):
            sent = time.perf_counter_ns()
            remote = int(self._call(self._actor.clock))
            samples.append(ClockSample(sent, remote, time.perf_counter_ns()))
        return estimate_offset(samples)

    def _stamp(self, outcome: WorkerOutcome) -> None:
        """Write where the worker ran and its clock into its own health, for the reports."""
        health = outcome.health
        health.where = self.where
        if self.clock is not None:
            health.clock_offset_ms = self.clock.offset_ms
            health.clock_uncertainty_ms = self.clock.uncertainty_ms
            try:
                health.clock_drift_ms = drift_ns(self.clock, self.measure_clock()) / 1e6
            except Exception:  # gone right after its last word: the run is whole, the drift unknown
                health.clock_drift_ms = None

    def send(self, message: tuple[Any, ...]) -> None:
        if self._actor is None:
            return
        try:
            self._actor.send.remote(message)
        except Exception:
            pass  # gone: its reader reports it

    def close(self) -> None:
        self._closing = True
        if self._actor is not None:
            try:
                self._ray.kill(self._actor, no_restart=True)
            except Exception:
                pass  # already gone
        if self._reader is not None:
            self._reader.join(CLOSE_WAIT_S)


# ---------------------------------------------------------------------------------------------
# A scenario on the cluster


def run_on_cluster(address: str, run: LoadRun, workers: int | None,
                   on_record: Callable[[RequestRecord], None]) -> LoadResult:
    """Drive `run` from load workers on the cluster's client nodes (`workers`: how many, None: one
    per client CPU). A cluster that cannot be joined or cannot hold the workers cuts the run
    before it sends anything (an ERROR saying why, never a crash)."""
    shape = load_shape(run.scenario)
    try:
        ray = connect(address)
        nodes, marked = client_nodes(ray.nodes())
        room = capacity(nodes, marked)
        count = worker_count(workers, shape, len(run.plan.measured), max(1, room))
        bundle = worker_bundle(marked)
        if count > room:
            raise ClusterError(f"{count} load workers do not fit on the Ray cluster at {address}: its "
                               f"{len(nodes)} client node(s) hold {room} (one worker takes {bundle})")
        placement = _place(ray, address, count, bundle)
    except ClusterError as exc:
        return _not_run(shape.mode, f"stopped: {exc}", len(run.plan.measured))
    from ray.util.placement_group import remove_placement_group

    try:
        parts = split_load(shape, run.plan.warmup, run.plan.measured, count)
        return run_with_workers(run, parts, on_record, make_link=lambda job: RayLink(job, placement, bundle))
    finally:
        remove_placement_group(placement)


def _place(ray: Any, address: str, count: int, bundle: dict[str, float]) -> Any:
    """A placement group of `count` worker bundles spread over the client nodes, once it is ready."""
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([dict(bundle) for _ in range(count)], strategy="SPREAD")
    try:
        ray.get(group.ready(), timeout=PLACE_TIMEOUT_S)
    except Exception as exc:
        remove_placement_group(group)
        raise ClusterError(f"the Ray cluster at {address} did not make room for {count} load workers "
                           f"(each {bundle}) within {PLACE_TIMEOUT_S:.0f} s: {type(exc).__name__}") from exc
    return group


def _not_run(mode: str, reason: str, planned: int) -> LoadResult:
    """The result of a run that sent nothing."""
    return LoadResult(records=[], timeline=RunTimeline(mode=mode, t_start=0),  # type: ignore[arg-type]
                      health=ClientHealthSample(), cut_short=cut_short_text(reason, 0.0, [], planned))
