"""Proportions: binomial tails, Clopper-Pearson and Wilson bounds, McNemar's exact test, and the
sample sizes a proportion needs to resolve a drop.

Tails and bounds go through the regularised incomplete beta (P(X >= k) = I_p(k, n - k + 1)), so
they cost the same at n = 10 and n = 10^6. Proportions are fractions in [0, 1].
"""

from __future__ import annotations

import math

from .decision import Decision, Op, bounds_verdict, growing_sizes, percent
from .special import betaincinv, ibeta, z

DEFAULT_POWER = 0.8


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    # P(X <= k) = 1 - I_p(k + 1, n - k)
    return ibeta(k + 1, n - k, p, 1.0 - p)[1]


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return ibeta(k, n - k + 1, p, 1.0 - p)[0]


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds (low, high) on a proportion, each at `confidence`.

    high is the largest p with P(X <= k | p) >= 1 - confidence, i.e. the beta(k + 1, n - k)
    quantile at `confidence`; low the smallest p with P(X >= k | p) >= 1 - confidence, the
    beta(k, n - k + 1) quantile at 1 - confidence. Exact (conservative) for any n; closed forms
    at k = 0 and k = n.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= k <= n:
        raise ValueError("k must be within 0..n")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    alpha = 1.0 - confidence
    root = math.log(alpha) / n  # log of alpha^(1/n)
    if k == n:
        high = 1.0
    elif k == 0:
        high = -math.expm1(root)  # (1 - p)^n = alpha
    else:
        high = betaincinv(k + 1, n - k, confidence)
    if k == 0:
        low = 0.0
    elif k == n:
        low = math.exp(root)  # p^n = alpha
    else:
        low = betaincinv(k, n - k + 1, alpha)
    return low, high


def wilson_interval(p: float, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval at `confidence` for a proportion `p` measured on n items
    ((0, 1) when n = 0). Each end is the one-sided bound at (1 + confidence) / 2."""
    if n <= 0:
        return (0.0, 1.0)
    q = z(0.5 + confidence / 2.0)
    denom = 1.0 + q * q / n
    centre = (p + q * q / (2 * n)) / denom
    half = q * math.sqrt(p * (1 - p) / n + q * q / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of a proportion `p` measured on n items (inf when n = 0).

    Raises ValueError for p outside [0, 1]: a percent (97.5) passed for a fraction (0.975) would
    otherwise give a silently meaningless value.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"proportion must be a fraction in [0, 1], got {p!r} (a percent?)")
    return math.sqrt(p * (1.0 - p) / n) if n > 0 else math.inf


def resolvable_drop(sd: float, confidence: float, power: float = DEFAULT_POWER) -> float:
    """The smallest drop a one-sided test at `confidence` detects with `power`, given the score's SD."""
    return (z(confidence) + z(power)) * sd


def items_needed(p: float, drop: float, confidence: float, power: float = DEFAULT_POWER) -> float:
    """Items needed to detect a drop of `drop` (a fraction) from accuracy `p` (inf for no drop)."""
    if drop <= 0:
        return math.inf
    return math.ceil(((z(confidence) + z(power)) ** 2) * p * (1 - p) / (drop * drop))


def mcnemar_worse(lost: int, gained: int) -> float:
    """Exact one-sided McNemar p-value that the new run is worse.

    `lost`: items right in the reference and wrong now; `gained`: the opposite. Under "no
    difference" each discordant item is a fair coin, so p = P(X >= lost), X ~ Binomial(lost + gained, 1/2).
    1.0 when there is no discordant item.
    """
    if lost < 0 or gained < 0:
        raise ValueError("counts must be non-negative")
    if lost + gained == 0:
        return 1.0
    return binom_sf(lost, lost + gained, 0.5)


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
    if op == "<=" and threshold <= 0.0:
        return Decision("pass" if k == 0 else "fail", est, low, high, confidence,
                        f"observed count (a zero ceiling cannot be proven by sampling): {k}/{n}")
    if op == ">=" and threshold >= 1.0:
        return Decision("pass" if k == n else "fail", est, low, high, confidence,
                        f"observed count (a floor of 1 cannot be proven by sampling): {k}/{n}")
    verdict = bounds_verdict(op, threshold, low, high)
    more = None
    if verdict == "inconclusive":
        more = _more_proportion(est, n, threshold, op, confidence)
    method = f"Clopper-Pearson one-sided {percent(confidence)} bounds on {k}/{n}"
    return Decision(verdict, est, low, high, confidence, method, more)


def _more_proportion(est: float, n: int, threshold: float, op: Op, confidence: float) -> float | None:
    if est == threshold:
        return None
    for m in growing_sizes(n):
        low, high = clopper_pearson(round(est * m), m, confidence)
        if bounds_verdict(op, threshold, low, high) != "inconclusive":
            return float(m - n)
    return None
