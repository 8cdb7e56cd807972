"""Percentile limits by the order-statistic / binomial rule MLPerf LoadGen uses for early stopping.

The count of samples above a limit is Binomial(n, 1 - p) when the p-quantile sits exactly at the
limit; a count improbable under that proves the quantile is below (or above) the limit.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from pytest_deepseek.verdict import Verdict

from .binomial import binom_cdf, binom_sf
from .decision import Decision, Op, growing_sizes, percent


def percentile_proven_at_most(n: int, over: int, p: float, confidence: float) -> bool:
    """True when n samples with `over` of them above a limit prove the p-quantile <= limit.

    If more than a fraction 1 - p of all requests exceeded the limit, seeing `over` or fewer
    would have probability P(Bin(n, 1-p) <= over); proven when that is <= 1 - confidence.
    """
    return n > 0 and binom_cdf(over, n, 1.0 - p) <= 1.0 - confidence


def percentile_proven_above(n: int, over: int, p: float, confidence: float) -> bool:
    """True when `over` of n samples above a limit prove the p-quantile > limit."""
    return n > 0 and binom_sf(over, n, 1.0 - p) <= 1.0 - confidence


def min_samples_for_percentile(p: float, confidence: float, over: int = 0) -> int:
    """Fewest samples with which `over` samples above the limit still prove the p-quantile.

    With over = 0 this is the smallest n with p^n <= 1 - confidence (p99 at 99%: 459).
    """
    if over == 0:
        return int(math.ceil(math.log(1.0 - confidence) / math.log(p) - 1e-12))
    hi = over + 1
    while not percentile_proven_at_most(hi, over, p, confidence):
        hi *= 2
    lo = max(over + 1, hi // 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if percentile_proven_at_most(mid, over, p, confidence):
            hi = mid
        else:
            lo = mid + 1
    return lo


def quantile_bound_ranks(n: int, p: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based ranks (i, j) of the order statistics that bound the p-quantile one-sidedly.

    X_(j) is an upper bound at `confidence` (smallest j with P(Bin(n, p) <= j-1) >= confidence),
    X_(i) a lower bound (largest i with P(Bin(n, p) >= i) >= confidence). None when n is too
    small for that side. These are the bounds LoadGen reports as its early-stopping estimate.
    """
    j = _first_rank(n, lambda r: binom_cdf(r - 1, n, p) >= confidence)
    i_rev = _first_rank(n, lambda r: binom_cdf(r - 1, n, 1.0 - p) >= confidence)
    i = None if i_rev is None else n + 1 - i_rev
    return i, j


def _first_rank(n: int, ok: Callable[[int], bool]) -> int | None:
    """Smallest r in 1..n with ok(r) (ok is monotone), or None."""
    if n <= 0 or not ok(n):
        return None
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def percentile_decision(values: Sequence[float] | np.ndarray, p: float, threshold: float, op: Op,
                        confidence: float) -> Decision:
    """Decide `p-quantile op threshold` by the binomial rule on per-request values.

    The estimate is the linearly interpolated sample quantile; low/high are the order-statistic
    bounds. For a ceiling, PASS when the count above the threshold proves the quantile is at most
    the threshold, FAIL when the count proves it is above; a floor is the mirror image (the
    ceiling question on the values below the threshold at 1 - p).
    """
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return Decision("inconclusive", None, None, None, confidence, "no samples",
                        float(min_samples_for_percentile(p, confidence)))
    est = float(np.quantile(x, p))
    i, j = quantile_bound_ranks(n, p, confidence)
    low = float(x[i - 1]) if i is not None else None
    high = float(x[j - 1]) if j is not None else None
    if op == "<=":
        beyond, level = int(np.count_nonzero(x > threshold)), p
        count_text = f"{beyond} of {n} above {threshold:g}"
    else:
        beyond, level = int(np.count_nonzero(x < threshold)), 1.0 - p
        count_text = f"{beyond} of {n} below {threshold:g}"
    verdict = _count_verdict(n, beyond, level, confidence)
    more = _more_percentile(n, beyond, level, confidence) if verdict == "inconclusive" else None
    method = f"binomial rule (MLPerf LoadGen), one-sided {percent(confidence)}: {count_text}"
    return Decision(verdict, est, low, high, confidence, method, more)


def _count_verdict(n: int, beyond: int, level: float, confidence: float) -> Verdict:
    if percentile_proven_at_most(n, beyond, level, confidence):
        return "pass"
    if percentile_proven_above(n, beyond, level, confidence):
        return "fail"
    return "inconclusive"


def _more_percentile(n: int, over: int, p: float, confidence: float) -> float | None:
    rate = over / n
    if rate == 1.0 - p:
        return None
    for m in growing_sizes(n):
        k = int(round(rate * m))
        if rate < 1.0 - p and percentile_proven_at_most(m, k, p, confidence):
            return float(m - n)
        if rate > 1.0 - p and percentile_proven_above(m, k, p, confidence):
            return float(m - n)
    return None
