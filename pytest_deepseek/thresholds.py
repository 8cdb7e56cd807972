"""The thresholds file (version 1): schema, loading with line-precise errors, profile lookup.

The serving part is resolved into typed `Scenario`s (profile serving defaults merged in). The
training and accuracy parts are validated for key names and types here and handed on as plain
dicts to their pipelines.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import (
    AnyOf,
    Flag,
    ListOf,
    MapOf,
    Mapping_,
    Nullable,
    Number,
    SchemaError,
    Spec,
    Text,
    dotted,
)
from .serving.metric_names import LATENCY_METRICS, gateable_metrics
from .yaml_lines import YamlSyntaxError, load_lined

DATASETS = ("random", "sonnet", "sharegpt", "jsonl")
ARRIVALS = ("poisson", "gamma", "constant")
APIS = ("completions", "chat")
LATENCY_NAMES = LATENCY_METRICS
SERVING_METRICS: tuple[str, ...] = tuple(gateable_metrics())  # the names the checks decide
TRAINING_DIALECTS = (
    "auto", "mmengine", "mindformers", "megatron", "hf", "torchtitan", "deepspeed", "jsonl",
    # aliases the parsers accept
    "xtuner", "mindspeed", "megatron-deepspeed", "transformers", "trl", "llamafactory", "llama-factory",
)
ACCURACY_BACKENDS = ("opencompass", "evalscope", "lm-eval")


class ThresholdsError(Exception):
    """A problem in a thresholds file; the message names the file, the line and the key."""


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


@dataclass(frozen=True)
class Profile:
    """One deployment under test: model × engine × hardware × topology."""

    name: str
    model: str | None = None
    engine: str | None = None
    hardware: str | None = None
    nodes: int = 1
    devices_per_node: int = 1
    api: str = "completions"
    endpoint: str | None = None
    tokenizer: str | None = None
    description: str | None = None
    scenarios: tuple[Scenario, ...] = ()
    training: tuple[dict[str, Any], ...] = ()
    accuracy: dict[str, Any] | None = None
    confidence: float = 0.95
    error_budget: float = 0.01
    source_line: int | None = None


@dataclass(frozen=True)
class Thresholds:
    """A loaded thresholds file."""

    path: Path | None
    profiles: Mapping[str, Profile]

    def select(self, names: Sequence[str]) -> list[Profile]:
        """The profiles named (or the only one); an unknown name is an error listing them."""
        if not names:
            if len(self.profiles) == 1:
                return list(self.profiles.values())
            if not self.profiles:
                raise ThresholdsError(f"{self.path}: no profiles defined")
            raise ThresholdsError(
                f"{self.path} defines {len(self.profiles)} profiles; choose with --profile: "
                + ", ".join(sorted(self.profiles))
            )
        chosen = []
        for name in names:
            if name not in self.profiles:
                near = difflib.get_close_matches(name, list(self.profiles), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ThresholdsError(
                    f"profile {name!r} is not in {self.path}{hint}; profiles: {', '.join(sorted(self.profiles))}"
                )
            chosen.append(self.profiles[name])
        return chosen


def _metric_key(valid: Sequence[str]) -> Any:
    def check(key: str, path: tuple[str | int, ...]) -> None:
        if key not in valid:
            near = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise SchemaError(path, f"unknown metric {key!r}{hint}")

    return check


def _slo_key(key: str, path: tuple[str | int, ...]) -> None:
    if key not in LATENCY_NAMES:
        near = difflib.get_close_matches(key, list(LATENCY_NAMES), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SchemaError(path, f"unknown SLO {key!r}{hint} (valid: {', '.join(LATENCY_NAMES)})")


_POSITIVE_INT = Number(minimum=1, integer=True)
_NONNEG_INT = Number(minimum=0, integer=True)
_FRACTION = Number(minimum=0, maximum=1)
_CONFIDENCE = Number(minimum=0.5, maximum=0.9999)
_THRESHOLD_VALUE = Number()

_SCENARIO_FIELDS: dict[str, Spec] = {
    "name": Text(),
    "input_len": _POSITIVE_INT,
    "output_len": _POSITIVE_INT,
    "dataset": Text(choices=DATASETS),
    "dataset_path": Nullable(Text()),
    "prefix_len": _NONNEG_INT,
    "concurrency": Nullable(_POSITIVE_INT),
    "request_rate": Nullable(Number(minimum=0, exclusive_minimum=True, allow_inf=True)),
    "arrival": Text(choices=ARRIVALS),
    "burstiness": Number(minimum=0, exclusive_minimum=True),
    "max_concurrency": Nullable(_POSITIVE_INT),
    "batch_size": Nullable(_POSITIVE_INT),
    "num_iters": Nullable(_POSITIVE_INT),
    "num_prompts": _POSITIVE_INT,
    "duration_s": Nullable(Number(minimum=0, exclusive_minimum=True)),
    "warmup": _NONNEG_INT,
    "force_output_len": Flag(),
    "continuous_usage": Flag(),
    "early_stop": Flag(),
    "allow_inconclusive": Flag(),
    "timeout_s": Number(minimum=0, exclusive_minimum=True),
    "min_batch_s": Nullable(Number(minimum=0)),
    "seed": _NONNEG_INT,
    "floors": MapOf(value=_THRESHOLD_VALUE, key_check=_metric_key(SERVING_METRICS)),
    "ceilings": MapOf(value=_THRESHOLD_VALUE, key_check=_metric_key(SERVING_METRICS)),
    "slo": MapOf(value=Number(minimum=0, exclusive_minimum=True), key_check=_slo_key),
    "confidence": _CONFIDENCE,
    "error_budget": _FRACTION,
    "api": Text(choices=APIS),
}


def _check_scenario_shape(values: dict[str, Any], path: tuple[str | int, ...]) -> None:
    if values.get("concurrency") is not None and values.get("request_rate") is not None:
        raise SchemaError(path, "give either concurrency (closed loop) or request_rate (open loop), not both; "
                                "cap an open loop with max_concurrency")
    if values.get("batch_size") is not None and (
        values.get("concurrency") is not None or values.get("request_rate") is not None
    ):
        raise SchemaError(path, "a latency scenario (batch_size) takes no concurrency or request_rate")
    if values.get("dataset") in ("sharegpt", "jsonl") and "dataset_path" not in values:
        raise SchemaError(path, f"dataset {values['dataset']!r} needs dataset_path")


_SCENARIO = Mapping_(fields=_SCENARIO_FIELDS, what="scenario", validate=_check_scenario_shape)
_SCENARIO_DEFAULTS = Mapping_(fields=_SCENARIO_FIELDS, what="serving defaults")

_SERVING = Mapping_(
    fields={"defaults": _SCENARIO_DEFAULTS, "scenarios": ListOf(item=_SCENARIO)},
    what="serving section",
)

_STATISTIC = Text(choices=("raw", "window_mean", "ema"))
_TRAINING_CONVERGE = Mapping_(
    fields={
        "metric": Text(),
        "below": Number(),
        "within": _POSITIVE_INT,
        "statistic": _STATISTIC,
        "window": _POSITIVE_INT,
        "sustain": _POSITIVE_INT,
        "strict": Flag(),
    },
    required=("below",),
    what="converge criterion",
)
_TRAINING_DIVERGE = Mapping_(
    fields={"metric": Text(), "ratio": Number(minimum=1, exclusive_minimum=True), "after": _NONNEG_INT,
            "statistic": _STATISTIC, "window": _POSITIVE_INT},
    required=("ratio",),
    what="diverge criterion",
)
_TRAINING_PLATEAU = Mapping_(
    fields={"metric": Text(), "below": Number(), "epsilon": Number(minimum=0), "patience": _POSITIVE_INT,
            "window": _POSITIVE_INT},
    required=("patience",),
    what="plateau criterion",
)
_TRAINING_FAIL_FAST = Mapping_(
    fields={"nan": Flag(), "crash": Flag(), "missing_metric": Flag(), "nan_iterations": _NONNEG_INT,
            "skipped_iterations": Nullable(_NONNEG_INT), "overflow_streak": _NONNEG_INT,
            "metrics": ListOf(item=Text(), scalar_ok=True)},
    what="fail_fast section",
)
_TRAINING_ENTRY = Mapping_(
    fields={
        "name": Text(),
        "log": AnyOf(options=[Text(), ListOf(item=Text())]),
        "dialect": Text(choices=TRAINING_DIALECTS),
        "rank": _NONNEG_INT,
        "converge": _TRAINING_CONVERGE,
        "diverge": _TRAINING_DIVERGE,
        "plateau": _TRAINING_PLATEAU,
        "fail_fast": _TRAINING_FAIL_FAST,
        "floors": MapOf(value=_THRESHOLD_VALUE),
        "ceilings": MapOf(value=_THRESHOLD_VALUE),
        "speed_statistic": Text(choices=("median", "mean", "p10", "p50", "p90", "min", "max", "aggregate")),
        "warmup_iters": _NONNEG_INT,
        "outlier_factor": Number(minimum=1),
        "min_records": _POSITIVE_INT,
        "seq_length": _POSITIVE_INT,
        "global_batch_size": _POSITIVE_INT,
        "devices": _POSITIVE_INT,
        "batch_size": _POSITIVE_INT,
        "sequence_parallel_size": _POSITIVE_INT,
        "cross_checks": Flag(),
        "cross_check_tolerance": Number(minimum=0, exclusive_minimum=True),
        "speed_decide_after": Nullable(_POSITIVE_INT),
        "example": Flag(),
        "description": Text(),
    },
    required=("name",),
    what="training entry",
)

_ACCURACY_DATASET = Mapping_(
    fields={
        "name": Text(),
        "metric": Text(),
        "subset": Text(),
        "min": Number(minimum=0, maximum=100),
        "reference": Number(minimum=0, maximum=100),
        "tolerance": Number(minimum=0, maximum=100),
        "reference_results": Text(),
        "spread": Number(minimum=0, exclusive_minimum=True),
        "expected_items": _POSITIVE_INT,
        "version": Text(),
        "config_hash": Text(),
        "confidence": _CONFIDENCE,
        "description": Text(),
    },
    required=("name",),
    what="accuracy dataset",
)


def _check_accuracy_dataset(values: dict[str, Any], path: tuple[str | int, ...]) -> None:
    if "min" not in values and "reference" not in values and "reference_results" not in values:
        raise SchemaError(path, f"dataset {values.get('name')!r} needs min:, or reference: (with tolerance:), "
                                "or reference_results:")
    if "tolerance" in values and "reference" not in values:
        raise SchemaError(path, "tolerance: goes with reference:")


_ACCURACY_DATASET.validate = _check_accuracy_dataset

_ACCURACY = Mapping_(
    fields={
        "backend": Text(choices=ACCURACY_BACKENDS),
        "datasets": ListOf(item=_ACCURACY_DATASET, min_items=1),
        "generation": Mapping_(
            fields={"temperature": Number(minimum=0, maximum=2), "top_p": Number(minimum=0, maximum=1),
                    "max_tokens": _POSITIVE_INT, "repeats": _POSITIVE_INT, "seed": _NONNEG_INT,
                    "concurrency": _POSITIVE_INT, "timeout_s": Number(minimum=0), "retries": _NONNEG_INT},
            what="generation settings",
        ),
        "endpoint": Text(),
        "model": Text(),
        "data": Text(),
        "results": Text(),
        "limit": _POSITIVE_INT,
        "example": Flag(),
        "description": Text(),
    },
    required=("backend", "datasets"),
    what="accuracy section",
)

_PROFILE_FIELDS: dict[str, Spec] = {
    "model": Text(),
    "engine": Text(),
    "hardware": Text(),
    "nodes": _POSITIVE_INT,
    "devices_per_node": _POSITIVE_INT,
    "api": Text(choices=APIS),
    "endpoint": Text(),
    "tokenizer": Text(),
    "description": Text(),
    "confidence": _CONFIDENCE,
    "error_budget": _FRACTION,
    "serving": _SERVING,
    "training": ListOf(item=_TRAINING_ENTRY),
    "accuracy": _ACCURACY,
}
_PROFILE = Mapping_(fields=_PROFILE_FIELDS, what="profile")
_DEFAULTS = Mapping_(
    fields={"confidence": _CONFIDENCE, "error_budget": _FRACTION, "allow_inconclusive": Flag(),
            "timeout_s": Number(minimum=0, exclusive_minimum=True)},
    what="defaults section",
)
_DOCUMENT = Mapping_(
    fields={"version": Number(minimum=1, maximum=1, integer=True), "defaults": _DEFAULTS,
            "profiles": MapOf(value=_PROFILE)},
    required=("version", "profiles"),
    what="thresholds file",
)


def _scenario_from(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> Scenario:
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


def _profile_from(name: str, values: Mapping[str, Any], file_defaults: Mapping[str, Any], line: int | None) -> Profile:
    confidence = values.get("confidence", file_defaults.get("confidence", 0.95))
    error_budget = values.get("error_budget", file_defaults.get("error_budget", 0.01))
    serving = values.get("serving") or {}
    scenario_defaults = {
        "confidence": confidence,
        "error_budget": error_budget,
        **({"allow_inconclusive": file_defaults["allow_inconclusive"]} if "allow_inconclusive" in file_defaults else {}),
        **({"timeout_s": file_defaults["timeout_s"]} if "timeout_s" in file_defaults else {}),
        **(serving.get("defaults") or {}),
    }
    scenarios = []
    for index, raw in enumerate(serving.get("scenarios") or []):
        where = ("profiles", name, "serving", "scenarios", index)
        merged_keys = {**scenario_defaults, **raw}
        if "input_len" not in merged_keys or "output_len" not in merged_keys:
            raise SchemaError(where, "every scenario needs input_len and output_len (here or in serving.defaults)")
        scenario = _scenario_from(raw, scenario_defaults)
        # The defaults merged in must still make one coherent load shape.
        shape_keys = ("concurrency", "request_rate", "batch_size", "dataset", "dataset_path")
        _check_scenario_shape({k: getattr(scenario, k) for k in shape_keys if getattr(scenario, k) is not None}, where)
        if any(s.ident == scenario.ident for s in scenarios):
            raise SchemaError(where, f"two scenarios would both be called {scenario.ident!r}: give one a name:")
        scenarios.append(scenario)
    names = [str(entry.get("name")) for entry in values.get("training") or []]
    for index, entry_name in enumerate(names):
        if entry_name in names[:index]:
            raise SchemaError(("profiles", name, "training", index, "name"),
                              f"two training entries are called {entry_name!r}: names must be unique")
    return Profile(
        name=name,
        model=values.get("model"),
        engine=values.get("engine"),
        hardware=values.get("hardware"),
        nodes=values.get("nodes", 1),
        devices_per_node=values.get("devices_per_node", 1),
        api=values.get("api", "completions"),
        endpoint=values.get("endpoint"),
        tokenizer=values.get("tokenizer"),
        description=values.get("description"),
        scenarios=tuple(scenarios),
        training=tuple(values.get("training") or ()),
        accuracy=values.get("accuracy"),
        confidence=confidence,
        error_budget=error_budget,
        source_line=line,
    )


def parse_thresholds(text: str, path: Path | None = None) -> Thresholds:
    """Parse and validate thresholds text; errors are `ThresholdsError` naming file:line and key."""
    where = str(path) if path is not None else "<thresholds>"
    try:
        document = load_lined(text)
    except YamlSyntaxError as exc:
        line = f":{exc.line}" if exc.line else ""
        raise ThresholdsError(f"{where}{line}: not valid YAML: {exc}") from exc
    if document.data is None:
        raise ThresholdsError(f"{where}: the file is empty (expected 'version: 1' and 'profiles:')")
    try:
        data = _DOCUMENT.check(document.data, ())
        defaults = data.get("defaults") or {}
        profiles = {
            name: _profile_from(name, values, defaults, document.line_of(("profiles", name)))
            for name, values in (data.get("profiles") or {}).items()
        }
    except SchemaError as exc:
        line = document.line_of(exc.path)
        line_part = f":{line}" if line else ""
        raise ThresholdsError(f"{where}{line_part}: {dotted(exc.path)}: {exc.message}") from exc
    return Thresholds(path=path, profiles=profiles)


def load_thresholds(path: Path) -> Thresholds:
    """Read and validate the thresholds file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ThresholdsError(f"thresholds file {path} does not exist (pass --thresholds=PATH)") from exc
    except UnicodeDecodeError as exc:
        raise ThresholdsError(f"{path}: not UTF-8 text ({exc})") from exc
    return parse_thresholds(text, path)


__all__ = [
    "Profile",
    "Scenario",
    "Thresholds",
    "ThresholdsError",
    "load_thresholds",
    "parse_thresholds",
    "SERVING_METRICS",
]
