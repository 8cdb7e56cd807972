"""Plain summaries of a sequence on the standard library: sample quantile, trailing window mean,
exponential moving average."""

from __future__ import annotations

import math
from typing import Sequence


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (q in [0, 1])."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def trailing_mean(values: Sequence[float], window: int) -> list[float | None]:
    """Mean of each full trailing window of `window` values (None before the first is full).

    A window holding a NaN has a NaN mean; running sums keep it linear in len(values).
    """
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


def ema(values: Sequence[float], window: int) -> list[float]:
    """Exponential moving average with alpha = 2 / (window + 1), seeded with the first value."""
    alpha = 2.0 / (window + 1)
    out: list[float] = []
    e: float | None = None
    for v in values:
        e = v if e is None else alpha * v + (1 - alpha) * e
        out.append(e)
    return out
