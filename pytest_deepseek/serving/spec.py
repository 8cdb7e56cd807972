"""The serving part of the thresholds file: its names, its schema fragment and the typed `Scenario`.

The lists of APIs, datasets and arrival processes, and the client-health limits with their
defaults, are written here once; the options, the workload builder and the contract import them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, get_args

from ..schema import (
    CONFIDENCE,
    FRACTION,
    NONNEG_INT,
    POSITIVE_INT,
    THRESHOLD_VALUE,
    Flag,
    ListOf,
    Mapping_,
    MapOf,
    Nullable,
    Number,
    SchemaError,
    Spec,
    Text,
    name_check,
)
from .metric_names import LATENCY_METRICS, gateable_metrics
from .records import ApiKind, Deadlines

EXACT_LENGTH_DATASETS = ("random", "sonnet")  # prompts built to the exact input_len with the tokenizer
FILE_DATASETS = ("sharegpt", "jsonl")  # prompts read from dataset_path, lengths as the file has them
DATASETS = EXACT_LENGTH_DATASETS + FILE_DATASETS
ARRIVALS = ("poisson", "gamma", "constant")
APIS: tuple[str, ...] = get_args(ApiKind)  # ("completions", "chat")
SERVING_METRICS: tuple[str, ...] = tuple(gateable_metrics())  # the names the checks decide
# The per-request deadlines: (thresholds key, option name, `Deadlines` field). The keys are allowed
# in a scenario, `serving.defaults`, a profile and the file's `defaults:`.
DEADLINE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("connect_timeout_s", "connect_timeout", "connect_s"),
    ("first_byte_timeout_s", "first_byte_timeout", "first_byte_s"),
    ("stall_timeout_s", "stall_timeout", "stall_s"),
    ("timeout_s", "request_timeout", "total_s"),
)
DEFAULT_DEADLINES = Deadlines()
# How requests are spread over the replicas of one deployment (several URLs, no proxy in front):
# in turn, or to the replica with the fewest requests in flight.
ROUTING_POLICIES = ("round-robin", "least-outstanding")
DEFAULT_ROUTING = ROUTING_POLICIES[0]
# The part an endpoint of such a deployment plays: measured (requests are routed to it), or only
# woken up before measuring (a replica behind the proxy that is measured).
REPLICA = "replica"
WARMUP_ONLY = "warm-up"


@dataclass(frozen=True)
class ClientLimits:
    """How far the load generator may fall behind before a run is called client-bound (a contract
    violation, so an ERROR): the `client_health:` mapping of a scenario or of `serving.defaults`.

    - `max_loop_lag_p99_ms`: event-loop lag p99 (how late a 10 ms sleeper wakes); beyond it token
      timings include client delay;
    - `max_stalled_fraction`: share of the run lost to stalls (wake-ups later than 50 ms);
    - `max_schedule_lag_p99_ms`: open loop, how late requests leave against their schedule (p99);
    - `min_rate_ratio`: open loop, achieved / scheduled request rate;
    - `min_concurrency_ratio`: closed loop, achieved / target concurrency in the steady window;
    - `max_cpu_fraction`: client process CPU time / wall time (1.0 = one core busy).

    The defaults suit a client with a core to itself; loosen them only where the run's purpose is
    not the figures (a test of the plumbing on a busy machine).
    """

    max_loop_lag_p99_ms: float = 20.0
    max_stalled_fraction: float = 0.01
    max_schedule_lag_p99_ms: float = 10.0
    min_rate_ratio: float = 0.95
    min_concurrency_ratio: float = 0.90
    max_cpu_fraction: float = 0.90

    def to_json(self) -> dict[str, float]:
        """Plain JSON (for summary.json)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


CLIENT_HEALTH_KEYS: tuple[str, ...] = tuple(f.name for f in fields(ClientLimits))


@dataclass(frozen=True)
class Scenario:
    """One serving measurement: a workload, a load shape, and what it must achieve."""

    input_len: int
    output_len: int
    name: str | None = None
    dataset: str = "random"
    dataset_path: str | None = None
    prefix_len: int = 0
    concurrency: int | None = None
    request_rate: float | None = None  # requests/s; math.inf = everything at once
    arrival: str = "poisson"
    burstiness: float = 1.0
    max_concurrency: int | None = None  # cap in open loop
    batch_size: int | None = None  # latency scenario: B requests sent together ...
    num_iters: int | None = None  # ... repeated N times
    num_prompts: int = 100
    duration_s: float | None = None
    warmup: int = 0
    force_output_len: bool = True
    continuous_usage: bool = False
    early_stop: bool = False
    allow_inconclusive: bool = False
    connect_timeout_s: float | None = None  # per-request deadlines (None: the profile's, else the defaults)
    first_byte_timeout_s: float | None = None
    stall_timeout_s: float | None = None
    timeout_s: float | None = None  # the whole request
    min_batch_s: float | None = None  # shortest throughput batch (None: checks.MIN_BATCH_S real, 0 simulated; 0 also drops the drift allowance)
    seed: int = 0
    floors: Mapping[str, float] = field(default_factory=dict)
    ceilings: Mapping[str, float] = field(default_factory=dict)
    slo: Mapping[str, float] = field(default_factory=dict)
    confidence: float = 0.95
    error_budget: float = 0.01
    api: str | None = None
    client_health: Mapping[str, float] = field(default_factory=dict)  # ClientLimits fields to change

    @property
    def client_limits(self) -> ClientLimits:
        """The client-health limits in force: the defaults with this scenario's `client_health:`."""
        return ClientLimits(**self.client_health)

    @property
    def exact_lengths(self) -> bool:
        """True when every prompt is built to exactly `input_len` tokens (not read from a file)."""
        return self.dataset in EXACT_LENGTH_DATASETS

    @property
    def mode(self) -> str:
        """closed, open or batch."""
        if self.batch_size is not None:
            return "batch"
        if self.request_rate is not None:
            return "open"
        return "closed"

    @property
    def ident(self) -> str:
        """A short id for test names: in2048-out1024-c1024 / -r10 / -b8x5."""
        if self.mode == "batch":
            load = f"b{self.batch_size}x{self.num_iters or 1}"
        elif self.mode == "open":
            rate = "inf" if self.request_rate is not None and math.isinf(self.request_rate) else f"{self.request_rate:g}"
            load = f"r{rate}" + (f"c{self.max_concurrency}" if self.max_concurrency else "")
        else:
            load = f"c{self.concurrency or 1}"
        if self.mode == "open" and self.arrival != "poisson":
            load += f"-{self.arrival}" + (f"{self.burstiness:g}" if self.arrival == "gamma" else "")
        base = f"in{self.input_len}-out{self.output_len}-{load}"
        if self.dataset != "random":
            base = f"{self.dataset}" + (f"p{self.prefix_len}" if self.prefix_len else "") + f"-{base}"
        if self.api is not None:
            base = f"{self.api}-{base}"
        return f"{self.name}-{base}" if self.name else base

    def describe(self) -> dict[str, Any]:
        """The scenario as plain JSON (for summary.json)."""
        return {
            "input_len": self.input_len,
            "output_len": self.output_len,
            "concurrency": self.concurrency,
            "request_rate": "inf" if self.request_rate is not None and math.isinf(self.request_rate) else self.request_rate,
            "arrival": self.arrival if self.mode == "open" else None,
            "batch_size": self.batch_size,
            "num_iters": self.num_iters,
            "num_prompts": (self.batch_size or 1) * (self.num_iters or 1) if self.mode == "batch" else self.num_prompts,
            "warmup": self.warmup,
            "dataset": self.dataset,
            "mode": self.mode,
        }


def _slo_key(key: str, path: tuple[str | int, ...]) -> None:
    if key not in LATENCY_METRICS:
        near = difflib.get_close_matches(key, list(LATENCY_METRICS), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SchemaError(path, f"unknown SLO {key!r}{hint} (valid: {', '.join(LATENCY_METRICS)})")


_MILLISECONDS = Number(minimum=0, exclusive_minimum=True)
DEADLINE_FIELDS: dict[str, Spec] = {key: Number(minimum=0, exclusive_minimum=True) for key, _, _ in DEADLINE_KEYS}
_RATIO = Number(minimum=0, maximum=1)
_CLIENT_HEALTH = Mapping_(
    fields={
        "max_loop_lag_p99_ms": _MILLISECONDS,
        "max_stalled_fraction": _RATIO,
        "max_schedule_lag_p99_ms": _MILLISECONDS,
        "min_rate_ratio": _RATIO,
        "min_concurrency_ratio": _RATIO,
        "max_cpu_fraction": Number(minimum=0, exclusive_minimum=True),
    },
    what="client_health mapping",
)

_SCENARIO_FIELDS: dict[str, Spec] = {
    "name": Text(),
    "input_len": POSITIVE_INT,
    "output_len": POSITIVE_INT,
    "dataset": Text(choices=DATASETS),
    "dataset_path": Nullable(Text()),
    "prefix_len": NONNEG_INT,
    "concurrency": Nullable(POSITIVE_INT),
    "request_rate": Nullable(Number(minimum=0, exclusive_minimum=True, allow_inf=True)),
    "arrival": Text(choices=ARRIVALS),
    "burstiness": Number(minimum=0, exclusive_minimum=True),
    "max_concurrency": Nullable(POSITIVE_INT),
    "batch_size": Nullable(POSITIVE_INT),
    "num_iters": Nullable(POSITIVE_INT),
    "num_prompts": POSITIVE_INT,
    "duration_s": Nullable(Number(minimum=0, exclusive_minimum=True)),
    "warmup": NONNEG_INT,
    "force_output_len": Flag(),
    "continuous_usage": Flag(),
    "early_stop": Flag(),
    "allow_inconclusive": Flag(),
    **DEADLINE_FIELDS,
    "min_batch_s": Nullable(Number(minimum=0)),
    "seed": NONNEG_INT,
    "floors": MapOf(value=THRESHOLD_VALUE, key_check=name_check(SERVING_METRICS)),
    "ceilings": MapOf(value=THRESHOLD_VALUE, key_check=name_check(SERVING_METRICS)),
    "slo": MapOf(value=Number(minimum=0, exclusive_minimum=True), key_check=_slo_key),
    "confidence": CONFIDENCE,
    "error_budget": FRACTION,
    "api": Text(choices=APIS),
    "client_health": _CLIENT_HEALTH,
}


def check_scenario_shape(values: dict[str, Any], path: tuple[str | int, ...]) -> None:
    """One coherent load shape (closed, open or batch), and a file for the file datasets."""
    if values.get("concurrency") is not None and values.get("request_rate") is not None:
        raise SchemaError(path, "give either concurrency (closed loop) or request_rate (open loop), not both; "
                                "cap an open loop with max_concurrency")
    if values.get("batch_size") is not None and (
        values.get("concurrency") is not None or values.get("request_rate") is not None
    ):
        raise SchemaError(path, "a latency scenario (batch_size) takes no concurrency or request_rate")
    if values.get("dataset") in FILE_DATASETS and "dataset_path" not in values:
        raise SchemaError(path, f"dataset {values['dataset']!r} needs dataset_path")


_SCENARIO = Mapping_(fields=_SCENARIO_FIELDS, what="scenario", validate=check_scenario_shape)
_SCENARIO_DEFAULTS = Mapping_(fields=_SCENARIO_FIELDS, what="serving defaults")

SERVING_SECTION = Mapping_(
    fields={"defaults": _SCENARIO_DEFAULTS, "scenarios": ListOf(item=_SCENARIO)},
    what="serving section",
)


def scenario_from(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> Scenario:
    """The scenario `values` with the profile's serving `defaults` merged in.

    A scenario's load shape replaces the defaults' shape; its floors, ceilings and slo replace the
    defaults' maps; its `client_health:` entries change only the limits they name.
    """
    defaults = dict(defaults)
    # A scenario that names its own load shape replaces the defaults' shape, not adds to it.
    if values.get("request_rate") is not None:
        defaults.pop("concurrency", None)
    if values.get("concurrency") is not None:
        defaults.pop("request_rate", None)
    if values.get("batch_size") is not None:
        defaults.pop("concurrency", None)
        defaults.pop("request_rate", None)
    if values.get("concurrency") is not None or values.get("request_rate") is not None:
        defaults.pop("batch_size", None)
        defaults.pop("num_iters", None)
    merged = {**defaults, **values}
    for key in ("floors", "ceilings", "slo"):
        merged[key] = dict(merged.get(key) or {})
    merged["client_health"] = {**(defaults.get("client_health") or {}), **(values.get("client_health") or {})}
    return Scenario(**merged)
