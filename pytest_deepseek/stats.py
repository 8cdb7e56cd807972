"""Statistics for release verdicts: confidence bounds that say PASS, FAIL or INCONCLUSIVE.

Shared by the serving, training and accuracy gates. Everything here is exact or a documented
numerical method on the standard library and numpy:

- Student t quantiles by Newton iteration on the t CDF, which comes from a regularized incomplete
  beta function evaluated by its continued fraction (modified Lentz);
- binomial tails by summing the probability mass function in log space (exact up to rounding);
- one-sided bounds on a mean from batch means over an autocorrelated time series;
- the order-statistic / binomial rule MLPerf LoadGen uses for percentile limits;
- Clopper-Pearson bounds on a proportion; McNemar's exact test.

Every bound is one-sided at the stated confidence: a PASS is wrong with probability at most
1 - confidence when the truth sits exactly at the threshold, and so is a FAIL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Callable, Literal, Sequence

import numpy as np

Verdict = Literal["pass", "fail", "inconclusive"]
Op = Literal[">=", "<="]

# Batch means. Batches must be long against the series' integrated autocorrelation time tau,
# or the batch means are themselves correlated and the bound is too narrow: each batch spans at
# least BATCH_TAU_MULT * tau observations. Fewer than MIN_BATCHES such batches leave the question
# open (the t quantile with < 4 degrees of freedom is too wide to be useful, and a short series
# cannot reveal its own autocorrelation); more than MAX_BATCHES add little.
MIN_BATCHES = 5
MAX_BATCHES = 30
BATCH_TAU_MULT = 6.0
# Sokal's automatic window: sum autocorrelations up to the first lag M >= TAU_WINDOW_C * tau(M).
TAU_WINDOW_C = 5.0

_STD_NORMAL = NormalDist()


def _pct(c: float) -> str:
    return f"{c * 100:.4g}%"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one threshold question, with the bounds that justify it.

    `low` and `high` are one-sided bounds, each at `confidence` (None when they cannot be formed).
    `more_needed` is a rough count of additional samples (or seconds, for time series) that would
    likely decide an inconclusive question if the estimate stays where it is; None otherwise.
    """

    verdict: Verdict
    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    more_needed: float | None = None


# ---------------------------------------------------------------------------------------------
# Special functions


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError("betainc needs a > 0 and b > 0")
    if not 0.0 <= x <= 1.0:
        raise ValueError("betainc needs 0 <= x <= 1")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only on this side of the mean; use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"betainc continued fraction did not converge (a={a}, b={b}, x={x})")


def t_cdf(t: float, df: float) -> float:
    """Student t cumulative distribution function."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if t == 0:
        return 0.5
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def _t_pdf(t: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """Student t quantile: the x with P(T_df <= x) = p (Newton's method from a normal start)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    z = _STD_NORMAL.inv_cdf(p)
    # Cornish-Fisher start (first two terms), then Newton on the exact CDF.
    x = z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)
    for _ in range(100):
        err = t_cdf(x, df) - p
        step = err / _t_pdf(x, df)
        x_new = x - step
        if x_new <= 0:
            x_new = x / 2
        if abs(x_new - x) <= 1e-12 * max(1.0, abs(x)):
            return x_new
        x = x_new
    return x


# ---------------------------------------------------------------------------------------------
# Binomial tails and proportions


_LOG_FACT = np.zeros(1)


def _log_factorials(n: int) -> np.ndarray:
    """log(k!) for k = 0..n, from a table grown on demand (exact lgamma per entry)."""
    global _LOG_FACT
    if _LOG_FACT.size <= n:
        size = max(n + 1, 2 * _LOG_FACT.size)
        _LOG_FACT = np.array([math.lgamma(k + 1.0) for k in range(size)], dtype=float)
    return _LOG_FACT


def _log_pmf(lo: int, hi: int, n: int, p: float) -> np.ndarray:
    lf = _log_factorials(n)
    ks = np.arange(lo, hi + 1)
    log_c = lf[n] - lf[ks] - lf[n - ks]
    return log_c + ks * math.log(p) + (n - ks) * math.log1p(-p)


def _sum_pmf(lo: int, hi: int, n: int, p: float) -> float:
    """P(lo <= X <= hi) for X ~ Binomial(n, p), summed exactly in log space."""
    lo, hi = max(lo, 0), min(hi, n)
    if lo > hi:
        return 0.0
    if p <= 0.0:
        return 1.0 if lo == 0 else 0.0
    if p >= 1.0:
        return 1.0 if hi == n else 0.0
    logs = _log_pmf(lo, hi, n, p)
    top = float(logs.max())
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p); the shorter tail is summed for accuracy."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    mode = n * p
    if k <= mode:
        return _sum_pmf(0, k, n, p)
    return max(0.0, 1.0 - _sum_pmf(k + 1, n, n, p))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    mode = n * p
    if k >= mode:
        return _sum_pmf(k, n, n, p)
    return max(0.0, 1.0 - _sum_pmf(0, k - 1, n, p))


def _bisect(f: Callable[[float], float], lo: float, hi: float, iters: int = 80) -> float:
    """Root of an increasing function f on [lo, hi] (f(lo) <= 0 <= f(hi))."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds (low, high) on a proportion, each at `confidence`.

    high is the largest p with P(X <= k | p) >= 1 - confidence; low the smallest p with
    P(X >= k | p) >= 1 - confidence. Exact (conservative) for any n.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= k <= n:
        raise ValueError("k must be within 0..n")
    alpha = 1.0 - confidence
    high = 1.0 if k == n else _bisect(lambda p: alpha - binom_cdf(k, n, p), 0.0, 1.0)
    low = 0.0 if k == 0 else _bisect(lambda p: binom_sf(k, n, p) - alpha, 0.0, 1.0)
    return low, high


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided Wilson score bounds (low, high), each at `confidence` (an approximation)."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = _STD_NORMAL.inv_cdf(confidence)
    phat = k / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_se(p: float, n: int) -> float:
    """Standard error of a proportion p (a fraction in [0, 1]) measured on n items."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be a fraction in [0, 1]")
    return math.sqrt(p * (1.0 - p) / n)


def mcnemar_one_sided(b: int, c: int) -> float:
    """Exact one-sided McNemar p-value that the candidate is worse than the reference.

    b: items the reference got right and the candidate wrong; c: the reverse. Under the null
    (no difference) b ~ Binomial(b + c, 1/2); the p-value is P(X >= b). 1.0 when b + c == 0.
    """
    if b < 0 or c < 0:
        raise ValueError("counts must be non-negative")
    if b + c == 0:
        return 1.0
    return binom_sf(b, b + c, 0.5)


def proportion_decision(
    k: int, n: int, threshold: float, op: Op, confidence: float, *, what: str = "proportion"
) -> Decision:
    """Decide `k/n op threshold` with one-sided Clopper-Pearson bounds.

    A threshold of exactly 0 (ceiling) or 1 (floor) cannot be proven by sampling; it is decided on
    the observed count instead (any occurrence fails, none passes) and the method says so.
    """
    if n <= 0:
        return Decision("inconclusive", None, None, None, confidence, f"no {what} measured", None)
    est = k / n
    low, high = clopper_pearson(k, n, confidence)
    method = f"Clopper-Pearson one-sided {_pct(confidence)} bounds on {k}/{n}"
    if op == "<=" and threshold <= 0.0:
        verdict: Verdict = "pass" if k == 0 else "fail"
        return Decision(verdict, est, low, high, confidence, "observed count (a zero ceiling "
                        "cannot be proven by sampling): " + f"{k}/{n}", None)
    if op == ">=" and threshold >= 1.0:
        verdict = "pass" if k == n else "fail"
        return Decision(verdict, est, low, high, confidence, "observed count (a floor of 1 "
                        "cannot be proven by sampling): " + f"{k}/{n}", None)
    verdict = _verdict(op, threshold, low, high)
    more = None
    if verdict == "inconclusive":
        more = _more_proportion(est, n, threshold, op, confidence)
    return Decision(verdict, est, low, high, confidence, method, more)


def _more_proportion(est: float, n: int, threshold: float, op: Op, confidence: float) -> float | None:
    if est == threshold:
        return None
    for m in _growing(n):
        k = round(est * m)
        low, high = clopper_pearson(k, m, confidence)
        if _verdict(op, threshold, low, high) != "inconclusive":
            return float(m - n)
    return None


def _growing(n: int, limit: int = 10_000_000) -> Sequence[int]:
    m, out = max(n, 1), []
    while m < limit:
        m = int(m * 1.25) + 1
        out.append(m)
    return out


def _verdict(op: Op, threshold: float, low: float | None, high: float | None) -> Verdict:
    if op == ">=":
        if low is not None and low >= threshold:
            return "pass"
        if high is not None and high < threshold:
            return "fail"
    else:
        if high is not None and high <= threshold:
            return "pass"
        if low is not None and low > threshold:
            return "fail"
    return "inconclusive"


def verdict_from_bounds(op: Op, threshold: float, low: float | None, high: float | None) -> Verdict:
    """PASS when the bound on the right side clears the threshold, FAIL when the other side
    crosses it, INCONCLUSIVE otherwise."""
    return _verdict(op, threshold, low, high)


# ---------------------------------------------------------------------------------------------
# Repeated looks


def per_look_confidence(confidence: float, looks: int) -> float:
    """Bonferroni over planned looks: each look tests at 1 - (1 - confidence) / looks.

    With at most `looks` interim decisions the chance that any of them is wrong stays below
    1 - confidence (per direction). Conservative, simple and valid for any look schedule.
    """
    if looks < 1:
        raise ValueError("looks must be >= 1")
    return 1.0 - (1.0 - confidence) / looks


# ---------------------------------------------------------------------------------------------
# Means


def mean_decision(values: Sequence[float] | np.ndarray, threshold: float, op: Op,
                  confidence: float) -> Decision:
    """Decide `mean op threshold` with one-sided Student t bounds (independent samples)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 2:
        est = float(x.mean()) if n else None
        return Decision("inconclusive", est, None, None, confidence,
                        f"t bounds need at least 2 samples (have {n})", None if n else 2.0)
    est = float(x.mean())
    sd = float(x.std(ddof=1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    low, high = est - half, est + half
    verdict = _verdict(op, threshold, low, high)
    more = _more_by_sqrt_n(n, half, est, threshold) if verdict == "inconclusive" else None
    return Decision(verdict, est, low, high, confidence,
                    f"Student t one-sided {_pct(confidence)} bounds, n={n}", more)


def _more_by_sqrt_n(n: float, half: float, est: float, threshold: float) -> float | None:
    gap = abs(est - threshold)
    if gap == 0 or not math.isfinite(half):
        return None
    needed = n * (half / gap) ** 2
    return float(max(1.0, math.ceil(needed - n)))


def autocorr_time(series: Sequence[float] | np.ndarray) -> tuple[float, bool]:
    """Integrated autocorrelation time tau = 1 + 2 * sum of autocorrelations (in observations).

    Sokal's automatic window: the sum runs to the first lag M with M >= 5 * tau(M). Returns
    (tau, reliable); reliable is False when no such M exists below n / 2, i.e. the series is too
    short to show where its correlation dies out (tau is then a lower estimate).
    """
    x = np.asarray(series, dtype=float)
    n = x.size
    d = x - x.mean()
    if n < 4 or not np.any(d):
        return 1.0, n >= 4
    spec = np.fft.rfft(d, 2 * n)
    acov = np.fft.irfft(spec * np.conj(spec))[:n]
    rho = acov / acov[0]
    tau = 1.0
    for m in range(1, n // 2):
        tau += 2.0 * rho[m]
        if m >= TAU_WINDOW_C * tau:
            return max(1.0, tau), True
    return max(1.0, tau), False


def batch_plan(n: int, tau: float, min_batch: int = 1) -> tuple[int, int]:
    """(number of batches, batch size) for n observations with autocorrelation time tau.

    Batch size is at least BATCH_TAU_MULT * tau and at least `min_batch`; the number of batches
    at most MAX_BATCHES (then batches grow to use all the data). The count may be below
    MIN_BATCHES: the caller must then treat the series as too short.
    """
    size = max(1, min_batch, math.ceil(BATCH_TAU_MULT * tau))
    b = min(MAX_BATCHES, n // size)
    if b >= 1:
        size = n // b
    return b, size


def batch_means(series: Sequence[float] | np.ndarray, n_batches: int) -> tuple[np.ndarray, int]:
    """Means of `n_batches` contiguous equal batches; returns (batch means, batch size).

    The first n mod b observations are dropped so every batch has the same length (the start of
    a window is the part most likely to carry ramp-up effects).
    """
    x = np.asarray(series, dtype=float)
    n = x.size
    if n_batches < 2 or n < n_batches:
        raise ValueError(f"need at least 2 batches and one observation per batch (n={n})")
    size = n // n_batches
    return x[n - size * n_batches:].reshape(n_batches, size).mean(axis=1), size


def series_decision(series: Sequence[float] | np.ndarray, threshold: float, op: Op,
                    confidence: float, *, unit_s: float = 1.0, min_batch: int = 1) -> Decision:
    """Decide `mean of series op threshold` for an autocorrelated series by batch means.

    Batches span at least BATCH_TAU_MULT autocorrelation times (estimated from the series); the
    bounds are mean ± t_{confidence, b-1} · sd(batch means) / sqrt(b). A series too short for
    MIN_BATCHES such batches, or too short to show its correlation time, is INCONCLUSIVE.
    `min_batch` is a floor on the batch length (observations) for data whose correlation may
    outlast what a short window can reveal: a short series under-estimates its own tau.
    `more_needed` is in seconds (observations × unit_s), from the 1/sqrt(length) shrinkage of
    the bound.
    """
    x = np.asarray(series, dtype=float)
    n = x.size
    est = float(x.mean()) if n else None
    if n < 2 * MIN_BATCHES:
        return Decision("inconclusive", est, None, None, confidence,
                        f"batch means need at least {2 * MIN_BATCHES} buckets (have {n})",
                        float((2 * MIN_BATCHES - n) * unit_s))
    tau, reliable = autocorr_time(x)
    b, size = batch_plan(n, tau, min_batch)
    if not reliable or b < MIN_BATCHES:
        # Too short for its own autocorrelation: ask for enough data for MIN_BATCHES batches
        # (and for the correlation to be visible).
        need = max(n + 1, MIN_BATCHES * max(min_batch, math.ceil(BATCH_TAU_MULT * tau)))
        if not reliable:
            need = max(need, 2 * n)
        why = ("the correlation time cannot be estimated yet" if not reliable else
               f"{b} batches of {size * unit_s:g} s")
        return Decision("inconclusive", est, None, None, confidence,
                        f"batch means: window too short for its autocorrelation "
                        f"(tau {tau * unit_s:.1f} s; {why})", float((need - n) * unit_s))
    means, size = batch_means(x, b)
    est = float(means.mean())
    sd = float(means.std(ddof=1))
    half = t_quantile(confidence, b - 1) * sd / math.sqrt(b)
    low, high = est - half, est + half
    verdict = _verdict(op, threshold, low, high)
    more = None
    if verdict == "inconclusive":
        m = _more_by_sqrt_n(size * b, half, est, threshold)
        more = None if m is None else m * unit_s
    method = (f"batch means ({b} batches of {size * unit_s:g} s, autocorrelation time "
              f"{tau * unit_s:.1f} s), Student t one-sided {_pct(confidence)} bounds")
    return Decision(verdict, est, low, high, confidence, method, more)


# ---------------------------------------------------------------------------------------------
# Percentiles (the MLPerf LoadGen binomial rule)


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
    n = over + 1
    hi = n
    while not percentile_proven_at_most(hi, over, p, confidence):
        hi *= 2
    lo = max(n, hi // 2)
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
    the threshold, FAIL when the count proves it is above; a floor is the mirror image.
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
        over = int(np.count_nonzero(x > threshold))
        if percentile_proven_at_most(n, over, p, confidence):
            verdict: Verdict = "pass"
        elif percentile_proven_above(n, over, p, confidence):
            verdict = "fail"
        else:
            verdict = "inconclusive"
        count_text = f"{over} of {n} above {threshold:g}"
    else:
        # Floor on a quantile: q_p >= T is the ceiling question on the mirrored values at 1 - p.
        under = int(np.count_nonzero(x < threshold))
        if percentile_proven_at_most(n, under, 1.0 - p, confidence):
            verdict = "pass"
        elif percentile_proven_above(n, under, 1.0 - p, confidence):
            verdict = "fail"
        else:
            verdict = "inconclusive"
        over = under
        count_text = f"{under} of {n} below {threshold:g}"
    more = None
    if verdict == "inconclusive":
        more = _more_percentile(n, over, p if op == "<=" else 1.0 - p, confidence)
    method = f"binomial rule (MLPerf LoadGen), one-sided {_pct(confidence)}: {count_text}"
    return Decision(verdict, est, low, high, confidence, method, more)


def _more_percentile(n: int, over: int, p: float, confidence: float) -> float | None:
    rate = over / n
    if rate == 1.0 - p:
        return None
    for m in _growing(n):
        k = int(round(rate * m))
        if rate < 1.0 - p and percentile_proven_at_most(m, k, p, confidence):
            return float(m - n)
        if rate > 1.0 - p and percentile_proven_above(m, k, p, confidence):
            return float(m - n)
    return None
