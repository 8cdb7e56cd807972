"""The serving part of the thresholds file: its names, its schema fragment and the typed `Scenario`."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

DATASETS = ("random", "sonnet", "sharegpt", "jsonl")
ARRIVALS = ("poisson", "gamma", "constant")
APIS = ("completions", "chat")
SERVING_METRICS: tuple[str, ...] = tuple(gateable_metrics())  # the names the checks decide


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
    timeout_s: float = 600.0
    min_batch_s: float | None = None  # shortest throughput batch (None: 30 s real, 0 simulated)
    seed: int = 0
    floors: Mapping[str, float] = field(default_factory=dict)
    ceilings: Mapping[str, float] = field(default_factory=dict)
    slo: Mapping[str, float] = field(default_factory=dict)
    confidence: float = 0.95
    error_budget: float = 0.01
    api: str | None = None

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
    "timeout_s": Number(minimum=0, exclusive_minimum=True),
    "min_batch_s": Nullable(Number(minimum=0)),
    "seed": NONNEG_INT,
    "floors": MapOf(value=THRESHOLD_VALUE, key_check=name_check(SERVING_METRICS)),
    "ceilings": MapOf(value=THRESHOLD_VALUE, key_check=name_check(SERVING_METRICS)),
    "slo": MapOf(value=Number(minimum=0, exclusive_minimum=True), key_check=_slo_key),
    "confidence": CONFIDENCE,
    "error_budget": FRACTION,
    "api": Text(choices=APIS),
}


def check_scenario_shape(values: dict[str, Any], path: tuple[str | int, ...]) -> None:
    if values.get("concurrency") is not None and values.get("request_rate") is not None:
        raise SchemaError(path, "give either concurrency (closed loop) or request_rate (open loop), not both; "
                                "cap an open loop with max_concurrency")
    if values.get("batch_size") is not None and (
        values.get("concurrency") is not None or values.get("request_rate") is not None
    ):
        raise SchemaError(path, "a latency scenario (batch_size) takes no concurrency or request_rate")
    if values.get("dataset") in ("sharegpt", "jsonl") and "dataset_path" not in values:
        raise SchemaError(path, f"dataset {values['dataset']!r} needs dataset_path")


_SCENARIO = Mapping_(fields=_SCENARIO_FIELDS, what="scenario", validate=check_scenario_shape)
_SCENARIO_DEFAULTS = Mapping_(fields=_SCENARIO_FIELDS, what="serving defaults")

SERVING_SECTION = Mapping_(
    fields={"defaults": _SCENARIO_DEFAULTS, "scenarios": ListOf(item=_SCENARIO)},
    what="serving section",
)


def scenario_from(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> Scenario:
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
    return Scenario(**merged)
