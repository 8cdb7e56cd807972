"""Cost of one-sided Clopper-Pearson bounds (and the binomial tails of the percentile rule) at
n = 10^4, 10^5, 10^6 (target: < 10 ms per pair of bounds at n = 10^6).

For each n, times `stats.clopper_pearson(k, n, 0.95)` over k in {1, n/100, n/3, n/2, n - 1}
(median and worst of several repeats per k) and `stats.binom_cdf` at the percentile rule's
typical point (k = n/100, p = 0.01). With scipy installed, also prints the largest difference from
scipy.stats.beta.ppf (the oracle; scipy is not a runtime dependency).

    python benchmarks/clopper_pearson.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

from pytest_deepseek import stats

CONFIDENCE = 0.95


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def oracle_gap(n: int, ks: list[int]) -> float | None:
    """Largest |bound - scipy's beta.ppf bound| over ks (None without scipy)."""
    try:
        from scipy.stats import beta
    except ImportError:
        return None
    gap = 0.0
    for k in ks:
        low, high = stats.clopper_pearson(k, n, CONFIDENCE)
        gap = max(gap, abs(low - float(beta.ppf(1 - CONFIDENCE, k, n - k + 1))),
                  abs(high - float(beta.ppf(CONFIDENCE, k + 1, n - k))))
    return gap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    stats.clopper_pearson(3, 10, CONFIDENCE)  # imports and caches outside the timings
    print(f"one-sided {CONFIDENCE:.0%} Clopper-Pearson bounds, {args.repeats} repeats per k")
    for n in (10**4, 10**5, 10**6):
        ks = [1, n // 100, n // 3, n // 2, n - 1]
        times = [t for k in ks for t in timed(lambda k=k: stats.clopper_pearson(k, n, CONFIDENCE),
                                              args.repeats)]
        cdf = timed(lambda: stats.binom_cdf(n // 100, n, 0.01), args.repeats)
        gap = oracle_gap(n, ks)
        print(f"n = {n:>9,}: bounds median {statistics.median(times) * 1e3:6.3f} ms, "
              f"worst {max(times) * 1e3:6.3f} ms; binom_cdf median "
              f"{statistics.median(cdf) * 1e3:6.3f} ms"
              + ("" if gap is None else f"; max |difference from scipy| {gap:.1e}"))


if __name__ == "__main__":
    main()
