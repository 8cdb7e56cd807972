"""A ``training:`` entry of thresholds.yaml: its fields (declared once), schema fragment and names.

Each criterion's settings are a frozen dataclass whose fields carry their schema `Spec`, default
and, where the default comes from another key, that key (`fallback`). The thresholds loader
validates the file with the fragment built from them (`TRAINING_ENTRY`, errors naming the line);
`read_entry` reads an entry into the same dataclasses with the same specs, raising ValueError
naming the key (entries given directly, not through the loader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, TypeVar

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
    Path_,
    SchemaError,
    Spec,
    Text,
    dotted,
)

STATISTICS = ("raw", "window_mean", "ema")
SPEED_STATISTICS = ("median", "mean", "p10", "p50", "p90", "min", "max", "aggregate")

# Log dialects in detection order (the most specific signatures first, plain JSONL last).
AUTO_DIALECT = "auto"
DIALECTS = ("mmengine", "mindformers", "megatron", "torchtitan", "deepspeed", "hf", "jsonl")
DIALECT_ALIASES = {"xtuner": "mmengine", "mindspeed": "megatron", "megatron-deepspeed": "megatron",
                   "transformers": "hf", "trl": "hf", "llamafactory": "hf", "llama-factory": "hf"}
DIALECT_CHOICES = (AUTO_DIALECT, *DIALECTS, *DIALECT_ALIASES)

# Check names: stable and unique within one entry's result (JUnit properties key on them).
CHECK_ENTRY = "entry"  # the entry cannot be used
CHECK_LOG = "log"  # the log cannot be read
CHECK_FAIL_FAST = "fail_fast"
CHECK_CONVERGE = "converge"
CHECK_DIVERGE = "diverge"
CHECK_PLATEAU = "plateau"
CHECK_HANG = "hang"
CHECK_TIMEOUT = "timeout"
CHECK_TRAIN_CMD = "train_cmd"
CHECK_NONE = "no_checks"
CROSS_CHECK_PREFIX = "cross_check."
BOUND_KINDS = ("floor", "ceiling")


def bound_check_name(kind: str, key: str) -> str:
    """`floor.tokens_per_sec_per_device`, `ceiling.memory_gib`: a floor and a ceiling may share a key."""
    return f"{kind}.{key}"


def is_bound_check(name: str) -> bool:
    """True for the name of a floor or ceiling check."""
    return name.split(".", 1)[0] in BOUND_KINDS and "." in name


_SCHEMA = "schema"
_FALLBACK = "fallback"
_SECTION = "section"


def _declared(schema: Spec, default: Any = MISSING, *, fallback: str | None = None) -> Any:
    """A field read from the entry with `schema`; absent, it takes the `fallback` key's value, else `default`."""
    return field(default=default, metadata={_SCHEMA: schema, _FALLBACK: fallback})


@cache
def _declared_fields(cls: type) -> tuple[Field[Any], ...]:
    return tuple(f for f in fields(cls) if _SCHEMA in f.metadata)


def _fragment(cls: type, what: str, *, required: tuple[str, ...] = (), extra: Mapping[str, Spec] | None = None,
              validate: Callable[[dict[str, Any], Path_], None] | None = None) -> Mapping_:
    """The schema of a section from its dataclass: fields without default nor fallback are required."""
    declared = _declared_fields(cls)
    needed = tuple(f.name for f in declared
                   if f.default is MISSING and f.default_factory is MISSING and not f.metadata.get(_FALLBACK))
    return Mapping_(fields={**{f.name: f.metadata[_SCHEMA] for f in declared}, **(extra or {})},
                    required=needed + required, what=what, validate=validate)


def _section(cls: type, what: str, **default: Any) -> Any:
    """A field holding an optional section read into `cls` (None when absent, unless a default is given)."""
    if not default:
        default = {"default": None}
    return field(metadata={_SCHEMA: _fragment(cls, what), _SECTION: True}, **default)


_STATISTIC = Text(choices=STATISTICS)


@dataclass(frozen=True)
class ConvergeSpec:
    """converge: the statistic of ``metric`` goes below ``below`` at an iteration <= ``within``."""

    below: float = _declared(Number())
    metric: str = _declared(Text(), "loss")
    within: int | None = _declared(POSITIVE_INT, None)
    statistic: str = _declared(_STATISTIC, "window_mean")
    window: int = _declared(POSITIVE_INT, 10)
    sustain: int = _declared(POSITIVE_INT, 1)
    strict: bool = _declared(Flag(), False)


@dataclass(frozen=True)
class DivergeSpec:
    """diverge: after ``after`` the statistic rises above ``ratio`` x its best so far."""

    ratio: float = _declared(Number(minimum=1, exclusive_minimum=True))
    metric: str = _declared(Text(), "loss", fallback="converge.metric")
    statistic: str = _declared(_STATISTIC, "window_mean")
    window: int = _declared(POSITIVE_INT, 10)
    after: int = _declared(NONNEG_INT, 0, fallback="warmup_iters")


@dataclass(frozen=True)
class PlateauSpec:
    """plateau: no relative improvement ``epsilon`` for ``patience`` windows while above ``below``."""

    patience: int = _declared(POSITIVE_INT)
    below: float = _declared(Number(), fallback="converge.below")
    epsilon: float = _declared(Number(minimum=0), 0.01)
    window: int = _declared(POSITIVE_INT, 50)
    metric: str = _declared(Text(), "loss", fallback="converge.metric")


@dataclass(frozen=True)
class FailFastSpec:
    """fail_fast: what ends a run at once. The converge metric is always watched too."""

    nan: bool = _declared(Flag(), True)
    crash: bool = _declared(Flag(), True)
    missing_metric: bool = _declared(Flag(), True)
    nan_iterations: float = _declared(NONNEG_INT, 0)
    skipped_iterations: float | None = _declared(Nullable(NONNEG_INT), 0)  # null: not checked
    overflow_streak: int = _declared(NONNEG_INT, 10)
    metrics: tuple[str, ...] = _declared(ListOf(item=Text(), scalar_ok=True), ("loss", "grad_norm"))


@dataclass(frozen=True)
class Bound:
    """One floor or ceiling: ``metric`` under ``statistic`` compared with ``threshold``."""

    key: str
    metric: str
    statistic: str | None
    threshold: float
    kind: str  # one of BOUND_KINDS

    @property
    def check_name(self) -> str:
        return bound_check_name(self.kind, self.key)


def _bound_key(key: str, path: Path_) -> None:
    stat = str(key).partition(".")[2]
    if stat and stat not in SPEED_STATISTICS:
        raise SchemaError(path, f"unknown statistic {stat!r}; use one of {', '.join(SPEED_STATISTICS)}")


_BOUNDS = MapOf(value=THRESHOLD_VALUE, key_check=_bound_key)


@dataclass(frozen=True)
class EntrySpec:
    """Everything the criteria read from one ``training:`` entry."""

    name: str = _declared(Text(), "training")
    converge: ConvergeSpec | None = _section(ConvergeSpec, "converge criterion")
    diverge: DivergeSpec | None = _section(DivergeSpec, "diverge criterion")
    plateau: PlateauSpec | None = _section(PlateauSpec, "plateau criterion")
    fail_fast: FailFastSpec = _section(FailFastSpec, "fail_fast section", default_factory=FailFastSpec)
    bounds: tuple[Bound, ...] = ()  # from floors: and ceilings:
    speed_statistic: str = _declared(Text(choices=SPEED_STATISTICS), "median")
    warmup_iters: int = _declared(NONNEG_INT, 10)
    outlier_factor: float = _declared(Number(minimum=1), 3.0)
    min_records: int = _declared(POSITIVE_INT, 3)
    seq_length: int | None = _declared(POSITIVE_INT, None)
    global_batch_size: int | None = _declared(POSITIVE_INT, None)
    devices: int | None = _declared(POSITIVE_INT, None)
    batch_size: int | None = _declared(POSITIVE_INT, None)
    sequence_parallel_size: int = _declared(POSITIVE_INT, 1)
    cross_checks: bool = _declared(Flag(), True)
    cross_check_tolerance: float = _declared(Number(minimum=0, exclusive_minimum=True), 0.1)
    speed_decide_after: int | None = _declared(Nullable(POSITIVE_INT), None)


def _plain(value: Any, spec: Spec) -> Any:
    """A checked value as the dataclasses hold it: floats for numbers, tuples for lists."""
    if isinstance(spec, Nullable):
        return None if value is None else _plain(value, spec.inner)
    if isinstance(spec, Number) and not spec.integer:
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _checked(spec: Spec, value: Any, where: str) -> Any:
    try:
        return _plain(spec.check(value, (where,)), spec)
    except SchemaError as exc:
        if exc.path == (where,):
            raise ValueError(f"{where} must be {spec.description}, got {value!r}") from None
        raise ValueError(f"{dotted(exc.path)}: {exc.message}") from None


def _value(f: Field[Any], raw: Mapping[str, Any], where: str, fallbacks: Mapping[str, Any]) -> Any:
    spec: Spec = f.metadata[_SCHEMA]
    if f.name in raw and (raw[f.name] is not None or isinstance(spec, Nullable)):
        return _checked(spec, raw[f.name], f"{where}.{f.name}")
    fallback = f.metadata.get(_FALLBACK)
    if fallback and fallbacks.get(fallback) is not None:
        return fallbacks[fallback]
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise ValueError(f"{where}.{f.name} is required" + (f" (or {fallback})" if fallback else ""))


T = TypeVar("T")


def _read(cls: type[T], raw: Any, where: str, fallbacks: Mapping[str, Any] | None = None) -> T:
    """`cls` from the mapping `raw`: each declared field checked with its spec (sections left at their default)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping, got {raw!r}")
    values = {f.name: _value(f, raw, where, fallbacks or {})
              for f in _declared_fields(cls) if _SECTION not in f.metadata}
    return cls(**values)


def _bounds(raw: Mapping[str, Any]) -> tuple[Bound, ...]:
    out = []
    for kind in BOUND_KINDS:
        values = raw.get(f"{kind}s")
        if values is None:
            continue
        for key, threshold in _checked(_BOUNDS, values, f"{kind}s").items():
            metric, _, stat = str(key).partition(".")
            out.append(Bound(str(key), metric, stat or None, float(threshold), kind))
    return tuple(out)


def read_entry(entry: Mapping[str, Any]) -> EntrySpec:
    """Typed settings from one ``training:`` entry; ValueError names a key that cannot be used."""
    top = _read(EntrySpec, entry, "training")  # the scalar settings first: sections fall back on them
    converge = None if entry.get("converge") is None else _read(ConvergeSpec, entry["converge"], "converge")
    fallbacks = {"warmup_iters": top.warmup_iters,
                 "converge.metric": converge.metric if converge else None,
                 "converge.below": converge.below if converge else None}
    diverge = None if entry.get("diverge") is None else _read(DivergeSpec, entry["diverge"], "diverge", fallbacks)
    plateau = None if entry.get("plateau") is None else _read(PlateauSpec, entry["plateau"], "plateau", fallbacks)
    fail_fast = _read(FailFastSpec, entry.get("fail_fast") or {}, "fail_fast")
    watched = fail_fast.metrics or FailFastSpec.metrics
    metric = converge.metric if converge else "loss"
    fail_fast = replace(fail_fast, metrics=tuple(dict.fromkeys([*watched, metric])))
    return replace(top, converge=converge, diverge=diverge, plateau=plateau, fail_fast=fail_fast,
                   bounds=_bounds(entry))


def _plateau_has_a_threshold(entry: dict[str, Any], path: Path_) -> None:
    plateau = entry.get("plateau")
    if plateau is not None and "below" not in plateau and "below" not in (entry.get("converge") or {}):
        raise SchemaError((*path, "plateau"), "plateau needs below: (here, or converge.below)")


# The schema fragment of one `training:` entry (the thresholds loader composes it): the declared
# fields, and the keys read by the log loader and the report rather than by the criteria.
TRAINING_ENTRY = _fragment(
    EntrySpec, "training entry", required=("name",), validate=_plateau_has_a_threshold,
    extra={
        "log": AnyOf(options=[Text(), ListOf(item=Text())]),
        "dialect": Text(choices=DIALECT_CHOICES),
        "rank": NONNEG_INT,
        "floors": _BOUNDS,
        "ceilings": _BOUNDS,
        "example": Flag(),
        "description": Text(),
    },
)
