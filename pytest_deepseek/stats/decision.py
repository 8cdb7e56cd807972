"""The shape of a statistical decision: one-sided bounds at a confidence, and the verdict they give.

Every bound is one-sided at the stated confidence: a PASS is wrong with probability at most
1 - confidence when the truth sits exactly at the threshold, and so is a FAIL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pytest_deepseek.verdict import Verdict

Op = Literal[">=", "<="]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one threshold question, with the bounds that justify it.

    `verdict` is "pass", "fail" or "inconclusive" (never "error": the data were usable).
    `low` and `high` are one-sided bounds, each at `confidence` (None when they cannot be formed).
    `more_needed` is a rough count of additional samples (or seconds, for time series) that would
    likely decide an inconclusive question if the estimate stays where it is; None otherwise.
    `bounds_name` names bounds that are not confidence bounds (a rule's), for messages.
    """

    verdict: Verdict
    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    more_needed: float | None = None
    bounds_name: str | None = None


def bounds_verdict(op: Op, threshold: float, low: float | None, high: float | None) -> Verdict:
    """PASS when the bound on the threshold's side clears it, FAIL when the other bound crosses
    it, INCONCLUSIVE otherwise."""
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


def per_look_confidence(confidence: float, looks: int) -> float:
    """Bonferroni over planned looks: each look tests at 1 - (1 - confidence) / looks.

    With at most `looks` interim decisions the chance that any of them is wrong stays below
    1 - confidence (per direction). Conservative, simple and valid for any look schedule.
    """
    if looks < 1:
        raise ValueError("looks must be >= 1")
    return 1.0 - (1.0 - confidence) / looks


def percent(confidence: float) -> str:
    """0.95 -> '95%' (for method texts)."""
    return f"{confidence * 100:.4g}%"


def more_by_sqrt_n(n: float, half: float, estimate: float, threshold: float) -> float | None:
    """Further samples after which a bound of half-width `half` on n samples, shrinking as
    1/sqrt(n), would clear the threshold if the estimate stayed put (None when it never would)."""
    gap = abs(estimate - threshold)
    if gap == 0 or not math.isfinite(half):
        return None
    needed = n * (half / gap) ** 2
    return float(max(1.0, math.ceil(needed - n)))


def growing_sizes(n: int, limit: int = 10_000_000) -> list[int]:
    """Sample sizes above n, each 25% larger than the last, up to `limit` (for "how many more")."""
    m, out = max(n, 1), []
    while m < limit:
        m = int(m * 1.25) + 1
        out.append(m)
    return out
