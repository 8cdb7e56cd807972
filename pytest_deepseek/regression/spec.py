"""The `regression:` part of the thresholds file: how much worse than a baseline run a metric may get.

    regression:
      output_throughput_per_node: 3%     # a percent is relative to the baseline's value
      ttft_ms.p99: 10%
      error_rate: 0.01                   # a plain number is absolute (a fraction here)
      score: 1.0                         # accuracy: points of percent
      tokens_per_sec: 3%                 # training: a floor's or ceiling's metric
      loss: 1%                           # training: the converge metric's best value

A metric is compared when its test measures it and it is named here, in DEFAULT_TOLERANCES, or in
one of the test's floors and ceilings; a metric named nowhere takes its family's default
(FAMILY_TOLERANCES). Which way is worse is written once: serving metrics by the serving name lists,
accuracy scores higher-is-better, training metrics by the thresholds that gate them (a floor's
metric is higher-is-better, a ceiling's and the converge metric lower-is-better).

No numpy here: the thresholds validator imports this module at plugin start.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..schema import MapOf, Path_, SchemaError, Spec
from ..serving.metric_names import LATENCY_METRICS, gateable_metrics, latency_names, throughput_names
from ..training.spec import SPEED_STATISTICS

Direction = Literal["higher", "lower"]
HIGHER: Direction = "higher"
LOWER: Direction = "lower"

# Check names: `regression.<metric>`, next to the floors and ceilings of the same result.
CHECK_PREFIX = "regression."
# The accuracy gate's metric (`Check.metric` of a dataset's score, in percent).
SCORE = "score"
# Training convergence: the first iteration at which the converge criterion held.
ITERATIONS_TO_CONVERGE = "iterations_to_converge"

# Metric families: the statistic behind a metric's interval and its default tolerance.
THROUGHPUT, LATENCY, RATE, ACCURACY, TRAINING_SPEED, CONVERGED_VALUE, ITERATIONS = (
    "throughput", "latency", "rate", "accuracy", "training_speed", "converged_value", "iterations")
FAMILY_TOLERANCES: Mapping[str, float | str] = {
    THROUGHPUT: "3%",
    LATENCY: "10%",
    RATE: 0.01,  # error_rate, good_fraction: one point of percent of the requests
    ACCURACY: 1.0,  # points of percent
    TRAINING_SPEED: "3%",
    CONVERGED_VALUE: "1%",
    ITERATIONS: "10%",
}
# Compared on every serving and accuracy test even when the thresholds name nothing.
DEFAULT_TOLERANCES: Mapping[str, float | str] = {
    "output_throughput_per_node": "3%",
    "input_throughput_per_node": "3%",
    "ttft_ms.p99": "10%",
    "tpot_ms.p99": "10%",
    "error_rate": 0.01,
    SCORE: 1.0,
}

_RATES_HIGHER = ("good_fraction",)
_RATES_LOWER = ("error_rate",)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")
_TRAINING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Tolerance:
    """How much worse a metric may get: `amount` is a fraction of the baseline's value when
    `relative` (written `3%`), else in the metric's own unit (accuracy: points of percent)."""

    amount: float
    relative: bool

    @classmethod
    def parse(cls, value: Any) -> "Tolerance":
        """`"3%"` -> relative 0.03; `1.0` -> absolute 1.0. ValueError for anything else."""
        if isinstance(value, str):
            match = _PERCENT.match(value)
            if match is None:
                raise ValueError(f"a tolerance is a percent such as '3%' or a plain number, got {value!r}")
            return cls(float(match.group(1)) / 100.0, True)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"a tolerance is a percent such as '3%' or a number >= 0, got {value!r}")
        return cls(float(value), False)

    def text(self) -> str:
        """`3%` or `0.01`, as written in the thresholds file."""
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


class ToleranceSpec(Spec):
    """A tolerance value in the thresholds file: `3%` (relative) or a number >= 0 (absolute)."""

    description = "a percent such as 3% or a number >= 0"

    def check(self, value: Any, path: Path_) -> Any:
        try:
            Tolerance.parse(value)
        except ValueError as exc:
            raise SchemaError(path, str(exc)) from None
        return value.strip() if isinstance(value, str) else value


def known_metrics() -> list[str]:
    """Names with a fixed meaning: every serving metric, the accuracy score, iterations to converge
    (training floors', ceilings' and converge metrics are named by the training entries)."""
    return [*gateable_metrics(), SCORE, ITERATIONS_TO_CONVERGE]


def check_metric_key(key: str, path: Path_) -> None:
    """A key of the `regression:` section: a known metric, or a training metric's plain name (a name
    close to a known one is taken for a typo of it)."""
    known = known_metrics()
    if key in known:
        return
    if key in LATENCY_METRICS:
        raise SchemaError(path, f"{key!r} needs a statistic: {key}.p99, {key}.p50, {key}.mean, ...")
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
    if near or not _TRAINING_NAME.match(key):
        hint = f"; did you mean {near[0]!r}?" if near else ""
        stats = f" (training metrics are plain names; statistics {', '.join(SPEED_STATISTICS)} are not part of them)"
        raise SchemaError(path, f"unknown metric {key!r} in the regression section{hint}{stats if not near else ''}")


REGRESSION_SECTION = MapOf(value=ToleranceSpec(), key_check=check_metric_key)


def serving_family(metric: str) -> str:
    """THROUGHPUT, LATENCY or RATE for a serving metric name (KeyError for another name)."""
    if metric in throughput_names():
        return THROUGHPUT
    if metric in latency_names():
        return LATENCY
    if metric in _RATES_HIGHER or metric in _RATES_LOWER:
        return RATE
    raise KeyError(f"not a serving metric: {metric!r}")


def serving_direction(metric: str) -> Direction:
    """Throughputs and good_fraction are better higher; latencies and error_rate lower."""
    family = serving_family(metric)
    return HIGHER if family == THROUGHPUT or metric in _RATES_HIGHER else LOWER


def bound_direction(op: str) -> Direction:
    """A floor's metric (`>=`) is better higher, a ceiling's (`<=`, `<`) lower."""
    return HIGHER if op.startswith(">") else LOWER


@dataclass(frozen=True)
class RegressionSpec:
    """The tolerances in force (the section's over DEFAULT_TOLERANCES) and the confidence of the
    comparison (None: each test's own)."""

    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    confidence: float | None = None

    @classmethod
    def of(cls, section: Mapping[str, Any] | None = None, *, confidence: float | None = None) -> "RegressionSpec":
        """From a `regression:` mapping (validated values, or raw ones: ValueError names the key)."""
        merged = {**DEFAULT_TOLERANCES, **dict(section or {})}
        tolerances = {}
        for key, value in merged.items():
            try:
                check_metric_key(str(key), ("regression", str(key)))
                tolerances[str(key)] = Tolerance.parse(value)
            except SchemaError as exc:
                raise ValueError(exc.message) from None
            except ValueError as exc:
                raise ValueError(f"regression.{key}: {exc}") from None
        if confidence is not None and not 0.5 <= confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence!r}")
        return cls(tolerances, confidence)

    def tolerance(self, metric: str, family: str) -> Tolerance:
        """The metric's tolerance: named, else its family's default."""
        given = self.tolerances.get(metric)
        return given if given is not None else Tolerance.parse(FAMILY_TOLERANCES[family])

    def serving_metrics(self, gated: Iterable[str] = ()) -> list[str]:
        """The serving metrics a scenario is compared on: those named here (defaults included), then
        its own floors' and ceilings' metrics, each once."""
        named = [m for m in self.tolerances if m in gateable_metrics()]
        return list(dict.fromkeys([*named, *gated]))

    def names(self, metric: str) -> bool:
        """True when the tolerances name `metric` (itself, not through its family)."""
        return metric in self.tolerances
