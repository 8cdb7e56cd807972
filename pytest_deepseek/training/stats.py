"""Training statistics over record series: the statistic a criterion names, speed summaries and
the logging interval. Generic pieces (quantile, trailing mean, EMA) live in pytest_deepseek.stats."""

from __future__ import annotations

from typing import Sequence

from ..stats.summary import ema, quantile, trailing_mean


def statistic_series(values: Sequence[float], statistic: str, window: int) -> list[float | None]:
    """Per-record statistic: raw values, trailing window mean (full windows only), or EMA.

    EMA uses alpha = 2 / (window + 1), seeded with the first value.
    """
    if statistic == "raw":
        return list(values)
    if statistic == "window_mean":
        return trailing_mean(values, window)
    if statistic == "ema":
        return list(ema(values, window))
    raise ValueError(f"unknown statistic {statistic!r}")


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
