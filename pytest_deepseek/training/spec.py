"""A ``training:`` entry of thresholds.yaml read into typed settings, with the defaults.

The plugin validates the file's schema; this module only reads what the criteria need and
raises ValueError naming the key when a value cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..schema import (
    NONNEG_INT,
    POSITIVE_INT,
    THRESHOLD_VALUE,
    AnyOf,
    Flag,
    ListOf,
    Mapping_,
    MapOf,
    Nullable,
    Number,
    Text,
)

STATISTICS = ("raw", "window_mean", "ema")
TRAINING_DIALECTS = (
    "auto", "mmengine", "mindformers", "megatron", "hf", "torchtitan", "deepspeed", "jsonl",
    # aliases the parsers accept
    "xtuner", "mindspeed", "megatron-deepspeed", "transformers", "trl", "llamafactory", "llama-factory",
)
SPEED_STATISTICS = ("median", "mean", "p10", "p50", "p90", "min", "max", "aggregate")


@dataclass(frozen=True)
class ConvergeSpec:
    """converge: the statistic of ``metric`` goes below ``below`` at an iteration <= ``within``."""

    metric: str = "loss"
    below: float = 0.0
    within: int | None = None
    statistic: str = "window_mean"
    window: int = 10
    sustain: int = 1
    strict: bool = False


@dataclass(frozen=True)
class DivergeSpec:
    """diverge: after ``after`` the statistic rises above ``ratio`` x its best so far."""

    ratio: float
    metric: str = "loss"
    statistic: str = "window_mean"
    window: int = 10
    after: int = 0


@dataclass(frozen=True)
class PlateauSpec:
    """plateau: no relative improvement ``epsilon`` for ``patience`` windows while above ``below``."""

    patience: int
    below: float
    epsilon: float = 0.01
    window: int = 50
    metric: str = "loss"


@dataclass(frozen=True)
class FailFastSpec:
    """fail_fast: what ends a run at once."""

    nan: bool = True
    crash: bool = True
    missing_metric: bool = True
    nan_iterations: float = 0
    skipped_iterations: float | None = 0
    overflow_streak: int = 10
    metrics: tuple[str, ...] = ("loss", "grad_norm")


@dataclass(frozen=True)
class Bound:
    """One floor or ceiling: ``metric`` under ``statistic`` compared with ``threshold``."""

    key: str
    metric: str
    statistic: str | None
    threshold: float
    kind: str  # "floor" | "ceiling"


@dataclass(frozen=True)
class EntrySpec:
    """Everything the criteria read from one ``training:`` entry."""

    name: str = "training"
    converge: ConvergeSpec | None = None
    diverge: DivergeSpec | None = None
    plateau: PlateauSpec | None = None
    fail_fast: FailFastSpec = field(default_factory=FailFastSpec)
    bounds: tuple[Bound, ...] = ()
    speed_statistic: str = "median"
    warmup_iters: int = 10
    outlier_factor: float = 3.0
    min_records: int = 3
    seq_length: int | None = None
    global_batch_size: int | None = None
    devices: int | None = None
    batch_size: int | None = None
    sequence_parallel_size: int = 1
    cross_checks: bool = True
    cross_check_tolerance: float = 0.1
    speed_decide_after: int | None = None


def _num(m: Mapping[str, Any], key: str, where: str, default: Any = None, *, integer: bool = False) -> Any:
    if key not in m or m[key] is None:
        return default
    v = m[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{where}.{key} must be a number, got {v!r}")
    if integer:
        if int(v) != v:
            raise ValueError(f"{where}.{key} must be an integer, got {v!r}")
        return int(v)
    return float(v)


def _choice(m: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str) -> str:
    v = m.get(key, default)
    if v not in choices:
        raise ValueError(f"{where}.{key} must be one of {', '.join(choices)}; got {v!r}")
    return str(v)


def _bounds(m: Any, kind: str, default_stat: str) -> tuple[Bound, ...]:
    if m is None:
        return ()
    if not isinstance(m, Mapping):
        raise ValueError(f"{kind}s must be a mapping of metric to number")
    out = []
    for key, val in m.items():
        metric, _, stat = str(key).partition(".")
        if stat and stat not in SPEED_STATISTICS:
            raise ValueError(f"{kind}s.{key}: unknown statistic {stat!r}; use one of {', '.join(SPEED_STATISTICS)}")
        threshold = _num({key: val}, key, f"{kind}s")
        out.append(Bound(str(key), metric, stat or None, threshold, kind))
    return tuple(out)


def read_entry(entry: Mapping[str, Any]) -> EntrySpec:
    """Typed settings from one ``training:`` entry; ValueError names a key that cannot be used."""
    warmup = _num(entry, "warmup_iters", "training", 10, integer=True)
    converge = None
    if entry.get("converge") is not None:
        c = entry["converge"]
        if "below" not in c:
            raise ValueError("converge.below is required")
        converge = ConvergeSpec(
            metric=str(c.get("metric", "loss")),
            below=_num(c, "below", "converge"),
            within=_num(c, "within", "converge", None, integer=True),
            statistic=_choice(c, "statistic", "converge", STATISTICS, "window_mean"),
            window=max(1, _num(c, "window", "converge", 10, integer=True)),
            sustain=max(1, _num(c, "sustain", "converge", 1, integer=True)),
            strict=bool(c.get("strict", False)),
        )
    metric = converge.metric if converge else "loss"
    diverge = None
    if entry.get("diverge") is not None:
        d = entry["diverge"]
        if "ratio" not in d:
            raise ValueError("diverge.ratio is required")
        diverge = DivergeSpec(
            ratio=_num(d, "ratio", "diverge"), metric=str(d.get("metric", metric)),
            statistic=_choice(d, "statistic", "diverge", STATISTICS, "window_mean"),
            window=max(1, _num(d, "window", "diverge", 10, integer=True)),
            after=_num(d, "after", "diverge", warmup, integer=True))
    plateau = None
    if entry.get("plateau") is not None:
        p = entry["plateau"]
        below = _num(p, "below", "plateau", converge.below if converge else None)
        if below is None or "patience" not in p:
            raise ValueError("plateau needs patience and below (or a converge.below)")
        plateau = PlateauSpec(
            patience=_num(p, "patience", "plateau", integer=True), below=below,
            epsilon=_num(p, "epsilon", "plateau", 0.01), window=max(1, _num(p, "window", "plateau", 50, integer=True)),
            metric=str(p.get("metric", metric)))
    ff = entry.get("fail_fast") or {}
    fail_fast = FailFastSpec(
        nan=bool(ff.get("nan", True)), crash=bool(ff.get("crash", True)),
        missing_metric=bool(ff.get("missing_metric", True)),
        nan_iterations=_num(ff, "nan_iterations", "fail_fast", 0),
        skipped_iterations=_num(ff, "skipped_iterations", "fail_fast", 0) if ff.get("skipped_iterations", 0) is not None else None,
        overflow_streak=_num(ff, "overflow_streak", "fail_fast", 10, integer=True),
        metrics=tuple(dict.fromkeys([*(ff.get("metrics") or ("loss", "grad_norm")), metric])),
    )
    stat = _choice(entry, "speed_statistic", "training", SPEED_STATISTICS, "median")
    return EntrySpec(
        name=str(entry.get("name", "training")), converge=converge, diverge=diverge, plateau=plateau,
        fail_fast=fail_fast,
        bounds=_bounds(entry.get("floors"), "floor", stat) + _bounds(entry.get("ceilings"), "ceiling", stat),
        speed_statistic=stat, warmup_iters=warmup,
        outlier_factor=_num(entry, "outlier_factor", "training", 3.0),
        min_records=_num(entry, "min_records", "training", 3, integer=True),
        seq_length=_num(entry, "seq_length", "training", None, integer=True),
        global_batch_size=_num(entry, "global_batch_size", "training", None, integer=True),
        devices=_num(entry, "devices", "training", None, integer=True),
        batch_size=_num(entry, "batch_size", "training", None, integer=True),
        sequence_parallel_size=_num(entry, "sequence_parallel_size", "training", 1, integer=True),
        cross_checks=bool(entry.get("cross_checks", True)),
        cross_check_tolerance=_num(entry, "cross_check_tolerance", "training", 0.1),
        speed_decide_after=_num(entry, "speed_decide_after", "training", None, integer=True),
    )


# The schema fragment of one `training:` entry (the thresholds loader composes it).
_STATISTIC = Text(choices=STATISTICS)
_TRAINING_CONVERGE = Mapping_(
    fields={
        "metric": Text(),
        "below": Number(),
        "within": POSITIVE_INT,
        "statistic": _STATISTIC,
        "window": POSITIVE_INT,
        "sustain": POSITIVE_INT,
        "strict": Flag(),
    },
    required=("below",),
    what="converge criterion",
)
_TRAINING_DIVERGE = Mapping_(
    fields={"metric": Text(), "ratio": Number(minimum=1, exclusive_minimum=True), "after": NONNEG_INT,
            "statistic": _STATISTIC, "window": POSITIVE_INT},
    required=("ratio",),
    what="diverge criterion",
)
_TRAINING_PLATEAU = Mapping_(
    fields={"metric": Text(), "below": Number(), "epsilon": Number(minimum=0), "patience": POSITIVE_INT,
            "window": POSITIVE_INT},
    required=("patience",),
    what="plateau criterion",
)
_TRAINING_FAIL_FAST = Mapping_(
    fields={"nan": Flag(), "crash": Flag(), "missing_metric": Flag(), "nan_iterations": NONNEG_INT,
            "skipped_iterations": Nullable(NONNEG_INT), "overflow_streak": NONNEG_INT,
            "metrics": ListOf(item=Text(), scalar_ok=True)},
    what="fail_fast section",
)
TRAINING_ENTRY = Mapping_(
    fields={
        "name": Text(),
        "log": AnyOf(options=[Text(), ListOf(item=Text())]),
        "dialect": Text(choices=TRAINING_DIALECTS),
        "rank": NONNEG_INT,
        "converge": _TRAINING_CONVERGE,
        "diverge": _TRAINING_DIVERGE,
        "plateau": _TRAINING_PLATEAU,
        "fail_fast": _TRAINING_FAIL_FAST,
        "floors": MapOf(value=THRESHOLD_VALUE),
        "ceilings": MapOf(value=THRESHOLD_VALUE),
        "speed_statistic": Text(choices=SPEED_STATISTICS),
        "warmup_iters": NONNEG_INT,
        "outlier_factor": Number(minimum=1),
        "min_records": POSITIVE_INT,
        "seq_length": POSITIVE_INT,
        "global_batch_size": POSITIVE_INT,
        "devices": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "sequence_parallel_size": POSITIVE_INT,
        "cross_checks": Flag(),
        "cross_check_tolerance": Number(minimum=0, exclusive_minimum=True),
        "speed_decide_after": Nullable(POSITIVE_INT),
        "example": Flag(),
        "description": Text(),
    },
    required=("name",),
    what="training entry",
)
