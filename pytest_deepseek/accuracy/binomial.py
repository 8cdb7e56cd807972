"""Statistics for accuracy scores: binomial error, sample size, McNemar's test, paired bootstrap.

Scores here are fractions (0-1); callers convert from percent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

DEFAULT_POWER = 0.8


def z(confidence: float) -> float:
    """The one-sided normal quantile for `confidence` (0.95 -> 1.645)."""
    return NormalDist().inv_cdf(confidence)


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of a proportion `p` measured on `n` items."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n) if n > 0 else math.inf


def wilson_interval(p: float, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval for a proportion `p` on `n` items."""
    if n <= 0:
        return (0.0, 1.0)
    q = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    denom = 1.0 + q * q / n
    centre = (p + q * q / (2 * n)) / denom
    half = q * math.sqrt(p * (1 - p) / n + q * q / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def resolvable_drop(sd: float, confidence: float, power: float = DEFAULT_POWER) -> float:
    """The smallest drop a one-sided test at `confidence` detects with `power`, given the score's SD."""
    return (z(confidence) + z(power)) * sd


def items_needed(p: float, drop: float, confidence: float, power: float = DEFAULT_POWER) -> int:
    """Items needed to detect a drop of `drop` (fraction) from accuracy `p`."""
    if drop <= 0:
        return math.inf  # type: ignore[return-value]
    return math.ceil(((z(confidence) + z(power)) ** 2) * p * (1 - p) / (drop * drop))


def mcnemar_worse(lost: int, gained: int) -> float:
    """Exact one-sided McNemar p-value that the new run is worse.

    `lost`: items right in the reference and wrong now; `gained`: the opposite. Under "no
    difference" each discordant item is a fair coin, so p = P(X >= lost), X ~ Binomial(lost+gained, 1/2).
    """
    total = lost + gained
    if total == 0:
        return 1.0
    return sum(math.comb(total, k) for k in range(lost, total + 1)) / 2.0**total


def paired_bootstrap_worse(
    reference: Sequence[float], current: Sequence[float], *, resamples: int = 10000, seed: int = 0
) -> float:
    """One-sided paired bootstrap p-value that `current` scores lower than `reference` item by item.

    Used when per-item scores are means over repeats (not 0/1): the share of resamples in which the
    current mean is not below the reference mean.
    """
    diffs = np.asarray(reference, dtype=float) - np.asarray(current, dtype=float)
    n = len(diffs)
    if n == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    not_worse = 0
    batch = max(1, 2_000_000 // n)
    done = 0
    while done < resamples:
        size = min(batch, resamples - done)
        sums = diffs[rng.integers(0, n, size=(size, n))].sum(axis=1)
        not_worse += int(np.count_nonzero(sums <= 0))
        done += size
    return not_worse / resamples
