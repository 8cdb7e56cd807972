"""Pure statistics over record series: windows, EMA, quantiles, steady state."""

from __future__ import annotations

import math
from typing import Sequence


def statistic_series(values: Sequence[float], statistic: str, window: int) -> list[float | None]:
    """Per-record statistic: raw values, trailing window mean (full windows only), or EMA.

    EMA uses alpha = 2 / (window + 1), seeded with the first value.
    """
    if statistic == "raw":
        return list(values)
    if statistic == "window_mean":
        out: list[float | None] = []
        total = 0.0
        nan_count = 0
        for i, v in enumerate(values):
            if math.isnan(v):
                nan_count += 1
            else:
                total += v
            if i >= window:
                old = values[i - window]
                if math.isnan(old):
                    nan_count -= 1
                else:
                    total -= old
            if i + 1 < window:
                out.append(None)
            elif nan_count:
                out.append(math.nan)
            else:
                out.append(total / window)
        return out
    if statistic == "ema":
        alpha = 2.0 / (window + 1)
        out = []
        e: float | None = None
        for v in values:
            e = v if e is None else alpha * v + (1 - alpha) * e
            out.append(e)
        return out
    raise ValueError(f"unknown statistic {statistic!r}")


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (q in [0, 1])."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(values: Sequence[float], statistic: str, weights: Sequence[float] | None = None) -> float:
    """median, mean, pNN, min, max, or aggregate (weighted mean: sum(v*w)/sum(w))."""
    if statistic == "aggregate":
        if weights is None:
            raise ValueError("aggregate needs weights (step times)")
        total_w = sum(weights)
        return sum(v * w for v, w in zip(values, weights)) / total_w
    s = sorted(values)
    if statistic == "median":
        return quantile(s, 0.5)
    if statistic == "mean":
        return sum(s) / len(s)
    if statistic == "min":
        return s[0]
    if statistic == "max":
        return s[-1]
    if statistic.startswith("p") and statistic[1:].isdigit():
        return quantile(s, int(statistic[1:]) / 100.0)
    raise ValueError(f"unknown statistic {statistic!r}")


def median_interval(iterations: Sequence[int]) -> int | None:
    """The typical logging interval (median difference of iteration numbers)."""
    diffs = sorted(b - a for a, b in zip(iterations, iterations[1:]) if b > a)
    return int(quantile(diffs, 0.5)) if diffs else None
