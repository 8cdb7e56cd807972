"""Floors and ceilings on serving metrics, decided with confidence bounds.

- throughput floors/ceilings (any `*throughput*` name, `goodput`, and their per-node/per-device
  variants): batch means over the bucket series of the window the metrics used, with an
  allowance for slow drift on real servers (see DRIFT_SD);
- `X.p50 .. X.p99` of a latency: the binomial rule (MLPerf LoadGen) on the per-request values;
- `X.mean`: one-sided Student t bounds on the per-request values;
- `error_rate`, `good_fraction`: one-sided Clopper-Pearson bounds on the request counts.

The rules for latencies treat requests as independent samples. Chunk gaps are pooled across
requests and gaps of one request are correlated, so `chunk_gap_ms` bounds are optimistic.

Each check is a separate one-sided test at `confidence`; no correction is made across the
checks of one scenario. With early stopping, pass the number of planned looks and every look is
tested at the Bonferroni-corrected confidence (`stats.per_look_confidence`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from pytest_deepseek import stats
from pytest_deepseek.serving.metric_names import PER_DEVICE, PER_NODE, base_metric, gateable_metrics
from pytest_deepseek.serving.metrics import (
    PERCENTILES,
    RunMetrics,
    throughput_names,
)
from pytest_deepseek.stats.decision import Decision, Op, bounds_verdict, percent
from pytest_deepseek.verdict import Verdict, combine

# Throughput on a real server. Batches are sized from the autocorrelation time measured on the
# window (stats.BATCH_TAU_MULT x tau) and are never shorter than MIN_BATCH_S: on short windows cut
# into fine buckets (the window / 40) one bucket holds a step or two of the engine, and 1.5 s spans
# tens of decode steps (10-100 ms each) and, at the concurrencies a gate runs, many request
# completions, so a batch mean averages over step-time and turnover noise; stats.MIN_BATCHES (3)
# batches of it fit in a 5 s steady window, the shortest on which a floor cleared by 2x must be
# decided. (The former fixed 30 s floor left every window under 90 s INCONCLUSIVE.)
#
# Batch means only see correlation much shorter than the window. A real server also drifts
# slowly (GPU clocks under power and thermal management, cache and memory state, the mix of
# context lengths in the batch), and a window of seconds shows such a drift as a near-constant
# offset that no estimate from the window itself can reveal: that is why short runs were
# miscalibrated (PASS or FAIL in 10-20% of 300-prompt runs with the truth exactly at the floor).
# So the bound carries a drift allowance: the throughput is taken to wander by up to DRIFT_SD
# (relative standard deviation) with a correlation time of DRIFT_TIME_S, and the part of such a
# drift's variance the batch means cannot see is added (stats.unseen_drift_share,
# stats.level_bounds). On a 5-8 s window that is about 7-8% of the level, so the allowance alone
# puts the one-sided 95% lower bound about 11% below the measured mean (about 18% at early
# stopping's Bonferroni-corrected 99.75%; 9-20% with the batch-means part in the 5-13 s runs of
# tests/unit/test_checks.py), well clear of a floor the truth beats by 2x; it is 3% on a
# 70 s window and 0.3-0.5% on a 12-minute one cut into batches of 25-55 s, where plain batch
# means do the work. The values cover, with margin, the drifting engine of
# benchmarks/verdict_trust.py (5% with a 7 s correlation time: a third of the allowance's
# variance on long windows, 2 * DRIFT_SD**2 * DRIFT_TIME_S); a server drifting more, or more
# slowly, than this is outside what a short window can promise. The simulator (min_batch_s 0)
# has no drift and gets neither the batch floor nor the allowance.
MIN_BATCH_S = 1.5
DRIFT_SD = 0.10
DRIFT_TIME_S = 5.0
# A simulator window too short to show its own correlation time (a fraction of a second of
# buckets, with a stall or two on a busy box) cannot bound its mean: no batch size is known to be
# long enough, and batches that are too short give bounds that are too narrow. Such a check is
# still decided when the threshold is more than OBVIOUS_FACTOR away from the window's mean (a floor
# of 1e9 tok/s against a few hundred); closer thresholds stay INCONCLUSIVE. On 2,000 windows each of
# strongly correlated series (AR(1), phi 0.9-0.99, 30-100% sd, 12-40 buckets) no PASS was wrong at
# any threshold from a fifth of the truth to five times it; wrong FAILs came only from windows
# that were mostly stalled (a mean under a tenth of the truth: 0-3.9% of them with the floor at
# the truth), a run that really delivered under a tenth of the floor.
OBVIOUS_FACTOR = 10.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict on one threshold, with the evidence behind it.

    `value` is the reported metric (for throughputs, the window figure); `low`/`high` are the
    one-sided bounds at `confidence`. `more_needed` is a rough amount of further measurement that
    would likely decide an inconclusive check, in `more_unit` ("s" or "requests").
    """

    metric: str
    op: Op
    threshold: float
    value: float | None
    low: float | None
    high: float | None
    verdict: Verdict
    method: str
    more_needed: float | None
    more_unit: str
    confidence: float
    message: str


def _validate(names: Iterable[str]) -> None:
    valid = set(gateable_metrics())
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(
            f"unknown metric name(s) {', '.join(repr(b) for b in bad)} in floors/ceilings; "
            f"valid names: {', '.join(gateable_metrics())}"
        )


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v != 0 and abs(v) < 1:
        return f"{v:.4g}"
    return f"{v:.2f}"


def _message(metric: str, op: Op, threshold: float, value: float | None, d: Decision,
             unit: str) -> str:
    bounds = d.bounds_name or percent(d.confidence)
    text = (f"{metric} {op} {_fmt(threshold)}: measured {_fmt(value)} "
            f"({bounds} lower {_fmt(d.low)}, upper {_fmt(d.high)}) -> {d.verdict.upper()}")
    if d.verdict == "inconclusive" and d.more_needed is not None:
        text += f" (about {d.more_needed:.0f} more {unit} may decide it)"
    return text


def _series_for(metric: str, buckets: np.ndarray | Mapping[str, np.ndarray] | None,
                metrics: RunMetrics) -> np.ndarray:
    base = base_metric(metric)
    if isinstance(buckets, Mapping):
        series = buckets.get(base)
    elif buckets is not None and base == "output_throughput":
        series = buckets
    else:
        series = None
    if series is None:
        raise ValueError(f"no per-second series for {base!r}: pass bucket_series(...) output "
                         f"that has the key {base!r}")
    scale = 1.0
    if metric.endswith(PER_NODE):
        scale = float(metrics.nodes)
    elif metric.endswith(PER_DEVICE):
        scale = float(metrics.nodes * metrics.devices_per_node)
    return np.asarray(series, dtype=float) / scale


def throughput_decision(series: np.ndarray, threshold: float, op: Op, confidence: float, *,
                        bucket_s: float = 1.0, min_batch_s: float = MIN_BATCH_S) -> Decision:
    """Decide `mean of a throughput bucket series op threshold` as the checks do: batch means with
    batches of at least `min_batch_s`, plus the drift allowance when `min_batch_s` > 0."""
    min_batch = max(1, math.ceil(min_batch_s / bucket_s - 1e-9))
    drift_sd = DRIFT_SD if min_batch_s > 0 else 0.0
    return stats.series_decision(series, threshold, op, confidence, unit_s=bucket_s,
                                 min_batch=min_batch, drift_sd=drift_sd,
                                 drift_time=DRIFT_TIME_S / bucket_s)


def obvious_throughput_decision(series: np.ndarray, threshold: float, op: Op,
                                undecided: Decision) -> Decision:
    """The verdict on a simulator's window too short to resolve its own correlation (`undecided`,
    INCONCLUSIVE without bounds) when the threshold is more than OBVIOUS_FACTOR away from the
    window's mean: FAIL or PASS, with mean / OBVIOUS_FACTOR and mean x OBVIOUS_FACTOR as its
    bounds; `undecided` otherwise (also for fewer than stats.MIN_BATCHES buckets)."""
    x = np.asarray(series, dtype=float)
    if x.size < stats.MIN_BATCHES:
        return undecided
    mean = float(x.mean())
    low, high = mean / OBVIOUS_FACTOR, mean * OBVIOUS_FACTOR
    verdict = bounds_verdict(op, threshold, low, high)
    if verdict == "inconclusive":
        return undecided
    method = (f"{undecided.method}; decided all the same: the threshold is more than {OBVIOUS_FACTOR:g}x "
              f"away from the window's mean (bounds: the mean / and x {OBVIOUS_FACTOR:g})")
    return dataclasses.replace(undecided, verdict=verdict, estimate=mean, low=low, high=high, method=method,
                               more_needed=None, bounds_name=f"{OBVIOUS_FACTOR:g}x rule")


def _decide(metric: str, op: Op, threshold: float, metrics: RunMetrics,
            buckets: np.ndarray | Mapping[str, np.ndarray] | None, confidence: float,
            bucket_s: float, min_batch_s: float) -> tuple[Decision, str]:
    finished = metrics.completed + metrics.failed
    if metric in throughput_names():
        series = _series_for(metric, buckets, metrics)
        decision = throughput_decision(series, threshold, op, confidence, bucket_s=bucket_s,
                                       min_batch_s=min_batch_s)
        if min_batch_s == 0 and decision.verdict == "inconclusive" and decision.low is None:
            decision = obvious_throughput_decision(series, threshold, op, decision)
        return decision, "s"
    if metric == "error_rate":
        return stats.proportion_decision(metrics.failed, finished, threshold, op, confidence,
                                         what="requests"), "requests"
    if metric == "good_fraction":
        return stats.proportion_decision(metrics.good, finished, threshold, op, confidence,
                                         what="requests"), "requests"
    base, _, stat = metric.partition(".")
    values = metrics.samples.get(base, np.zeros(0))
    if stat == "mean":
        return stats.mean_decision(values, threshold, op, confidence), "requests"
    return stats.percentile_decision(values, PERCENTILES[stat], threshold, op, confidence), \
        ("chunks" if base == "chunk_gap_ms" else "requests")


def evaluate_checks(
    metrics: RunMetrics,
    buckets: np.ndarray | Mapping[str, np.ndarray] | None,
    *,
    floors: Mapping[str, float] | None = None,
    ceilings: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    looks: int = 1,
    bucket_s: float = 1.0,
    min_batch_s: float = MIN_BATCH_S,
) -> list[CheckResult]:
    """Decide every floor (">=") and ceiling ("<=") against one run's metrics.

    `buckets` is `bucket_series(records, metrics)` (a mapping of base throughput name to its
    per-second series), or just the output series as an array when only output floors are
    checked; node and device counts come from `metrics`. `looks` > 1 applies the Bonferroni
    correction for repeated interim looks. `min_batch_s` is the shortest batch for throughput
    batch means (see MIN_BATCH_S): with the default a throughput check needs a window of at least
    3 x 1.5 s. A positive `min_batch_s` (a real server) also adds the drift allowance
    (DRIFT_SD, DRIFT_TIME_S); 0 (the simulator) trusts the window's own correlation estimate.
    Raises ValueError for an unknown metric name.
    """
    floors = dict(floors or {})
    ceilings = dict(ceilings or {})
    _validate([*floors, *ceilings])
    if not 0.5 < confidence < 1.0:
        raise ValueError("confidence must be in (0.5, 1)")
    conf = stats.per_look_confidence(confidence, looks)
    results: list[CheckResult] = []
    for op, table in ((">=", floors), ("<=", ceilings)):
        for metric, threshold in table.items():
            d, unit = _decide(metric, op, float(threshold), metrics, buckets, conf, bucket_s,
                              min_batch_s)
            value = metrics.value(metric)
            method = d.method if looks == 1 else (
                f"{d.method}; Bonferroni over {looks} looks (each at {percent(conf)})")
            results.append(CheckResult(
                metric=metric, op=op, threshold=float(threshold), value=value, low=d.low,
                high=d.high, verdict=d.verdict, method=method, more_needed=d.more_needed,
                more_unit=unit, confidence=conf,
                message=_message(metric, op, float(threshold), value, d, unit),
            ))
    return results


def decided(checks: Iterable[CheckResult]) -> bool:
    """True when every check is a PASS or a FAIL (the early-stop condition)."""
    return all(c.verdict != "inconclusive" for c in checks)


def overall_verdict(checks: Iterable[CheckResult]) -> Verdict:
    """FAIL if any check fails, else INCONCLUSIVE if any is undecided, else PASS (also when
    there is nothing to check): `verdict.combine` over the checks."""
    return combine(c.verdict for c in checks)
