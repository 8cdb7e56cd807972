"""Bounds on the change of a figure between two runs (pure).

Each run's own one-sided bounds (`evidence.Estimate`) are combined by the method of variance
estimates recovery (MOVER: Zou and Donner; Newcombe's interval for a difference of proportions is
its best-known case): the distance from the difference B - A to its lower bound is the root sum of
squares of the distances from B to its lower bound and from A to its upper bound, and the other way
round for the upper bound. A relative change does the same on logarithms, so its bounds stay
asymmetric where the runs' are. When both runs scored the same accuracy items, the paired
difference is bounded directly instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .. import stats
from ..stats.decision import percent
from .evidence import Estimate


@dataclass(frozen=True)
class PairedChange:
    """The paired difference of two runs' per-item scores (points of percent) and its bounds."""

    change: float
    low: float | None
    high: float | None
    items: int
    method: str


def paired_score_change(a_items: Mapping[str, float], b_items: Mapping[str, float],
                        confidence: float) -> PairedChange | None:
    """B - A over the items both runs scored, in points, with one-sided bounds (None without common items).

    Right/wrong items: the difference is d = delta * (1 - 2 pi), delta the share of items on which
    the runs disagree and pi the share of those the candidate lost (McNemar's discordant pairs).
    Clopper-Pearson bounds on delta and on pi, each at 1 - (1 - confidence) / 2, bound d: valid for
    any n, and never narrower than the runs' agreement shows (a run compared with itself on n items
    is bounded by the disagreement n items cannot exclude). Items averaged over repeats: Student t
    bounds on the mean per-item difference.
    """
    common = [(a_items[k], b_items[k]) for k in b_items if k in a_items]
    n = len(common)
    if n == 0:
        return None
    binary = all(a in (0.0, 1.0) and b in (0.0, 1.0) for a, b in common)
    if not binary:
        diffs = [100.0 * (b - a) for a, b in common]
        d = stats.mean_decision(diffs, 0.0, ">=", confidence)
        return PairedChange(sum(diffs) / n, d.low, d.high, n, f"paired per-item differences, {d.method}")
    lost = sum(1 for a, b in common if a == 1.0 and b == 0.0)
    gained = sum(1 for a, b in common if a == 0.0 and b == 1.0)
    split = 1.0 - (1.0 - confidence) / 2.0
    disagree = lost + gained
    delta_low, delta_high = stats.clopper_pearson(disagree, n, split)
    pi_low, pi_high = stats.clopper_pearson(lost, disagree, split) if disagree else (0.0, 1.0)
    low_factor, high_factor = 1.0 - 2.0 * pi_high, 1.0 - 2.0 * pi_low
    low = (delta_low if low_factor >= 0 else delta_high) * low_factor
    high = (delta_high if high_factor >= 0 else delta_low) * high_factor
    method = (f"paired on {n} items ({lost} lost, {gained} gained): Clopper-Pearson on the disagreement and "
              f"on the lost share, one-sided {percent(confidence)}")
    return PairedChange(100.0 * (gained - lost) / n, 100.0 * low, 100.0 * high, n, method)


def _distance(value: float, bound: float | None) -> float | None:
    return None if bound is None else abs(value - bound)


def _root_sum(*parts: float | None) -> float | None:
    return None if any(p is None for p in parts) else math.hypot(*parts)  # type: ignore[arg-type]


def difference_bounds(a: Estimate, b: Estimate) -> tuple[float | None, float | None]:
    """One-sided bounds on B - A from each run's bounds (MOVER)."""
    assert a.value is not None and b.value is not None
    d = b.value - a.value
    below = _root_sum(_distance(b.value, b.low), _distance(a.value, a.high))
    above = _root_sum(_distance(b.value, b.high), _distance(a.value, a.low))
    return (None if below is None else d - below), (None if above is None else d + above)


def _log_distance(value: float, bound: float | None) -> float | None:
    if bound is None:
        return None
    return math.inf if bound <= 0 else abs(math.log(value) - math.log(bound))


def ratio_bounds(a: Estimate, b: Estimate) -> tuple[float | None, float | None]:
    """One-sided bounds on B / A - 1 from each run's bounds (MOVER on logarithms; positive figures)."""
    assert a.value is not None and b.value is not None and a.value > 0 and b.value > 0
    r = math.log(b.value) - math.log(a.value)
    below = _root_sum(_log_distance(b.value, b.low), _log_distance(a.value, a.high))
    above = _root_sum(_log_distance(b.value, b.high), _log_distance(a.value, a.low))
    low = None if below is None else math.expm1(r - below)
    high = None if above is None or math.isinf(above) else math.expm1(r + above)
    return low, high
