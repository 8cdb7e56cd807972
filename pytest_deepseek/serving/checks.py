"""Floors and ceilings on serving metrics, decided with confidence bounds.

- throughput floors/ceilings (any `*throughput*` name, `goodput`, and their per-node/per-device
  variants): batch means over the per-second bucket series of the window the metrics used;
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

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from pytest_deepseek import stats
from pytest_deepseek.serving.metric_names import gateable_metrics
from pytest_deepseek.serving.metrics import (
    PERCENTILES,
    RunMetrics,
    throughput_names,
)
from pytest_deepseek.stats.decision import Decision, Op, percent
from pytest_deepseek.verdict import Verdict, combine

# Shortest batch (seconds) for throughput batch means on a real server (a simulator uses 0).
# Batches are sized from the autocorrelation time measured on the window (stats.BATCH_TAU_MULT x
# tau); this floor only binds when that is shorter, i.e. on short windows cut into fine buckets
# (the window / 40), where one bucket holds a step or two of the engine and tau, at least one
# bucket, says little. 1.5 s spans tens of decode steps (10-100 ms each) and, at the
# concurrencies a gate runs, many request completions, so a batch mean averages over step-time
# and turnover noise; and stats.MIN_BATCHES (3) batches of it fit in a 5 s steady window, the
# shortest on which a floor cleared by 2x must be decided. Drifts slower than the window cannot
# be seen whatever the batch length: the former fixed 30 s floor only left every window under
# 150 s INCONCLUSIVE (a 9 s window at 2.9x its floor with tau 0.1 s was undecided).
MIN_BATCH_S = 1.5


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
    text = (f"{metric} {op} {_fmt(threshold)}: measured {_fmt(value)} "
            f"({percent(d.confidence)} lower {_fmt(d.low)}, upper {_fmt(d.high)}) -> {d.verdict.upper()}")
    if d.verdict == "inconclusive" and d.more_needed is not None:
        text += f" (about {d.more_needed:.0f} more {unit} may decide it)"
    return text


def _series_for(metric: str, buckets: np.ndarray | Mapping[str, np.ndarray] | None,
                metrics: RunMetrics) -> np.ndarray:
    base = metric.removesuffix("_per_node").removesuffix("_per_device")
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
    if metric.endswith("_per_node"):
        scale = float(metrics.nodes)
    elif metric.endswith("_per_device"):
        scale = float(metrics.nodes * metrics.devices_per_node)
    return np.asarray(series, dtype=float) / scale


def _decide(metric: str, op: Op, threshold: float, metrics: RunMetrics,
            buckets: np.ndarray | Mapping[str, np.ndarray] | None, confidence: float,
            bucket_s: float, min_batch_s: float) -> tuple[Decision, str]:
    finished = metrics.completed + metrics.failed
    if metric in throughput_names():
        series = _series_for(metric, buckets, metrics)
        min_batch = max(1, math.ceil(min_batch_s / bucket_s - 1e-9))
        return stats.series_decision(series, threshold, op, confidence, unit_s=bucket_s,
                                     min_batch=min_batch), "s"
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
    3 x 1.5 s, longer when the series' autocorrelation time asks for longer batches.
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
