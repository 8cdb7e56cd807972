"""What one run says about one metric: its figure and one-sided bounds at a confidence (pure).

The bounds come from the statistics the gates decide with, computed on the run's own material:

- serving throughputs: batch means over the window's bucket series, with the checks' drift
  allowance on real servers (`serving.checks.throughput_decision`);
- serving percentiles: the order statistics that bound the quantile (`stats.quantile_bound_ranks`,
  the binomial rule's ranks); means: Student t (`stats.mean_decision`); error_rate and
  good_fraction: Clopper-Pearson on the request counts. As in the gate's latency rules, requests
  are independent samples: a state a whole run shares (a slower engine on that day) is not part of
  these bounds, which is why latency tolerances stay above the run-to-run spread (10% by default);
- accuracy scores: Clopper-Pearson on the items right (per-item results are kept for a paired
  comparison, `compare.paired_score_change`);
- training speeds: the order statistics of the steady per-iteration values for a median or pNN,
  batch means for a mean or aggregate; the converge metric's best value and its first crossing as
  the log prints them (bounded by the printing precision and the logging interval only: one log
  shows no seed-to-seed spread).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .. import stats
from ..serving.checks import throughput_decision
from ..serving.metrics import PERCENTILES, RunMetrics
from ..serving.metric_names import base_metric, gateable_metrics
from ..stats.decision import percent
from ..training.spec import is_bound_check
from ..verdict import Check, GateResult
from .spec import (ACCURACY, CONVERGED_VALUE, ITERATIONS, ITERATIONS_TO_CONVERGE, RATE, SCORE,
                   THROUGHPUT, TRAINING_SPEED, Direction, HIGHER, LOWER, RegressionSpec, serving_direction,
                   serving_family)


@dataclass(frozen=True)
class Estimate:
    """A run's figure for a metric and its one-sided bounds (each at the confidence it was made
    for; None where the run cannot bound it). `method` says how the bounds were made, or why not."""

    value: float | None
    low: float | None
    high: float | None
    method: str

    @classmethod
    def unbounded(cls, value: float | None, why: str) -> "Estimate":
        """A figure without bounds."""
        return cls(value, None, None, why)


@dataclass(frozen=True)
class Compared:
    """One metric a test is compared on: its name, family (see spec) and which way is better."""

    metric: str
    family: str
    direction: Direction


def _scaled(value: float | None, decision: stats.Decision) -> Estimate:
    """Bounds made around the decision's own estimate, carried over to the reported figure by their
    ratio to it (a per-node figure, or a window figure beside a batch-means estimate)."""
    est = decision.estimate
    if value is None or not est:
        return Estimate.unbounded(value, decision.method)
    scale = value / est
    low = None if decision.low is None else decision.low * scale
    high = None if decision.high is None else decision.high * scale
    return Estimate(value, low, high, decision.method)


def order_statistic_estimate(values: Sequence[float] | np.ndarray, p: float, value: float | None,
                             confidence: float) -> Estimate:
    """The p-quantile's bounds: the order statistics the binomial rule names (None on a side with
    too few values)."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Estimate.unbounded(value, "no values")
    i, j = stats.quantile_bound_ranks(n, p, confidence)
    low = float(x[i - 1]) if i is not None else None
    high = float(x[j - 1]) if j is not None else None
    ranks = f"X({i if i is not None else '-'}), X({j if j is not None else '-'}) of {n}"
    return Estimate(value if value is not None else float(np.quantile(x, p)), low, high,
                    f"order statistics {ranks}, one-sided {percent(confidence)}")


def proportion_estimate(k: int, n: int, value: float | None, confidence: float, *, scale: float = 1.0) -> Estimate:
    """Clopper-Pearson bounds on k of n (times `scale`: 100 for percent)."""
    if n <= 0:
        return Estimate.unbounded(value, "no items")
    low, high = stats.clopper_pearson(k, n, confidence)
    shown = value if value is not None else scale * k / n
    return Estimate(shown, low * scale, high * scale, f"Clopper-Pearson one-sided {percent(confidence)} on {k}/{n}")


@dataclass(frozen=True)
class ServingMaterial:
    """A scenario's figures and what their noise is estimated from: the per-request samples and the
    window's throughput bucket series, as the gate judged it."""

    metrics: RunMetrics
    series: Mapping[str, np.ndarray]
    bucket_s: float
    min_batch_s: float
    confidence: float
    gated: tuple[str, ...] = ()  # the scenario's floor and ceiling metrics

    def compared(self, spec: RegressionSpec) -> list[Compared]:
        """The metrics this scenario is compared on."""
        return [Compared(m, serving_family(m), serving_direction(m)) for m in spec.serving_metrics(self.gated)]

    def estimate(self, metric: str, confidence: float) -> Estimate:
        """The metric's figure and bounds."""
        metrics = self.metrics
        value = metrics.value(metric)
        family = serving_family(metric)
        if family == THROUGHPUT:
            base = base_metric(metric)
            series = self.series.get(base)
            if series is None or value is None:
                return Estimate.unbounded(value, "no throughput window")
            decision = throughput_decision(np.asarray(series, dtype=float), 0.0, ">=", confidence,
                                           bucket_s=self.bucket_s, min_batch_s=self.min_batch_s)
            return _scaled(value, decision)
        if family == RATE:
            k = metrics.failed if metric == "error_rate" else metrics.good
            return proportion_estimate(k, metrics.completed + metrics.failed, value, confidence)
        base, _, stat = metric.partition(".")
        samples = metrics.samples.get(base, np.zeros(0))
        if stat == "mean":
            return _scaled(value, stats.mean_decision(samples, 0.0, ">=", confidence))
        return order_statistic_estimate(samples, PERCENTILES[stat], value, confidence)


@dataclass(frozen=True)
class AccuracyMaterial:
    """A dataset's score in percent, its item count and, when the backend gave them, per-item scores
    (1/0, or the mean over repeats) by item id."""

    score: float | None
    n: int | None
    items: Mapping[str, float] | None
    confidence: float

    def compared(self, spec: RegressionSpec) -> list[Compared]:
        """The score."""
        return [Compared(SCORE, ACCURACY, HIGHER)]

    def estimate(self, metric: str, confidence: float) -> Estimate:
        """The score and its Clopper-Pearson bounds (points of percent)."""
        if self.score is None or not self.n:
            return Estimate.unbounded(self.score, "the item count is unknown")
        right = int(round(self.score * self.n / 100.0))
        return proportion_estimate(right, self.n, self.score, confidence, scale=100.0)


@dataclass(frozen=True)
class SpeedSeries:
    """A training floor's or ceiling's metric: the statistic it is decided on, the gate's figure, and
    the steady, outlier-free per-iteration values behind it (None when the log could not be read)."""

    metric: str
    op: str
    statistic: str
    value: float | None
    values: tuple[float, ...] | None
    source: str = ""  # where the values were read, or why they are missing


@dataclass(frozen=True)
class ConvergeFigures:
    """The converge criterion's figures: its metric, the best value of its statistic and the first
    iteration it held (None without a crossing), with their precision."""

    metric: str
    best_value: float | None
    half_unit: float
    first_crossing: int | None
    logging_interval: int


@dataclass(frozen=True)
class TrainingMaterial:
    """A training test's comparable figures: its speed bounds (speed aspect) or its convergence."""

    speeds: tuple[SpeedSeries, ...] = ()
    converge: ConvergeFigures | None = None
    confidence: float = 0.95

    def compared(self, spec: RegressionSpec) -> list[Compared]:
        """Every speed bound's metric; the converge metric and the iterations to converge."""
        out = [Compared(s.metric, TRAINING_SPEED, HIGHER if s.op.startswith(">") else LOWER) for s in self.speeds]
        if self.converge is not None:
            out += [Compared(self.converge.metric, CONVERGED_VALUE, LOWER),
                    Compared(ITERATIONS_TO_CONVERGE, ITERATIONS, LOWER)]
        return list({c.metric: c for c in out}.values())

    def estimate(self, metric: str, confidence: float) -> Estimate:
        """A speed statistic with its interval, or a convergence figure with its precision."""
        figures = self.converge
        if figures is not None and metric == ITERATIONS_TO_CONVERGE:
            if figures.first_crossing is None:
                return Estimate.unbounded(None, f"{figures.metric} never crossed its target")
            first = float(figures.first_crossing)
            return Estimate(first, first - figures.logging_interval + 1, first,
                            f"as logged (every {figures.logging_interval} iteration(s))")
        if figures is not None and metric == figures.metric:
            best = figures.best_value
            if best is None:
                return Estimate.unbounded(None, f"no {figures.metric} value")
            return Estimate(best, best - figures.half_unit, best + figures.half_unit,
                            f"best value as printed (± {figures.half_unit:g})")
        speed = next(s for s in self.speeds if s.metric == metric)
        return speed_estimate(speed, confidence)


def speed_estimate(speed: SpeedSeries, confidence: float) -> Estimate:
    """The statistic's bounds: order statistics for a median or pNN, batch means over the iteration
    series for a mean or aggregate; none for min and max."""
    if speed.values is None:
        return Estimate.unbounded(speed.value, f"no per-iteration values ({speed.source})")
    stat = speed.statistic.split(" ")[0]
    if stat == "median" or (stat.startswith("p") and stat[1:].isdigit()):
        p = 0.5 if stat == "median" else int(stat[1:]) / 100.0
        return order_statistic_estimate(speed.values, p, speed.value, confidence)
    if stat in ("mean", "aggregate"):
        return _scaled(speed.value, stats.series_decision(speed.values, 0.0, ">=", confidence))
    return Estimate.unbounded(speed.value, f"the {stat} of a series has no interval")


def _dotted(metrics: Mapping[str, Any], name: str) -> float | None:
    """`ttft_ms.p99` -> metrics["ttft_ms"]["p99"]; a plain name -> metrics[name] (None when absent)."""
    base, _, stat = name.partition(".")
    value = metrics.get(base)
    if stat:
        value = value.get(stat) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class FiguresOnly:
    """A test whose raw material could not be read (records or evaluation missing): its summary
    figures are compared without bounds, so nothing is decided on them. (A training convergence
    test needs no more than its summary entry: see `load.summary_material`.)"""

    why: str
    result: GateResult

    def compared(self, spec: RegressionSpec) -> list[Compared]:
        """What the result's kind is compared on, as far as its summary entry tells."""
        result = self.result
        if result.kind == "serving":
            gated = [c.metric for c in result.checks if c.metric in gateable_metrics()]
            return [Compared(m, serving_family(m), serving_direction(m)) for m in spec.serving_metrics(gated)]
        if result.kind == "accuracy":
            return [Compared(SCORE, ACCURACY, HIGHER)]
        return [Compared(c.metric, TRAINING_SPEED, HIGHER if c.op.startswith(">") else LOWER)
                for c in self._bound_checks()]

    def _bound_checks(self) -> list[Check]:
        return [c for c in self.result.checks if is_bound_check(c.name) and c.metric]

    def estimate(self, metric: str, confidence: float) -> Estimate:
        """The summary's figure, unbounded."""
        if self.result.kind == "training":
            value = next((c.value for c in self._bound_checks() if c.metric == metric), None)
        else:
            value = _dotted(self.result.metrics, metric)
        return Estimate.unbounded(value, self.why)


Material = Union[ServingMaterial, AccuracyMaterial, TrainingMaterial, FiguresOnly]
