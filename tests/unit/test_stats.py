"""Statistics helpers against textbook values, exact small cases and scipy as an oracle."""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
import pytest

from pytest_deepseek import stats


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.95, 5, 2.015),
        (0.975, 10, 2.228),
        (0.99, 20, 2.528),
        (0.995, 30, 2.750),
        (0.95, 120, 1.658),
        (0.95, 29, 1.699),
        (0.995, 9, 3.250),
    ],
)
def test_t_quantile_matches_table(p: float, df: int, expected: float) -> None:
    assert stats.t_quantile(p, df) == pytest.approx(expected, abs=6e-4)


def test_t_quantile_symmetry_and_normal_limit() -> None:
    assert stats.t_quantile(0.05, 7) == pytest.approx(-stats.t_quantile(0.95, 7))
    assert stats.t_quantile(0.5, 3) == 0.0
    assert stats.t_quantile(0.95, 1e7) == pytest.approx(1.644854, abs=1e-5)
    for df in (1, 4, 25):
        assert stats.t_cdf(stats.t_quantile(0.9, df), df) == pytest.approx(0.9, abs=1e-12)


def test_betainc_closed_forms() -> None:
    assert stats.betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-12)  # P(Bin(4, .4) >= 2)
    assert stats.betainc(1, 1, 0.3) == pytest.approx(0.3)
    assert stats.betainc(2.5, 1, 0.6) == pytest.approx(0.6**2.5)
    assert stats.betainc(3, 7, 0.8) + stats.betainc(7, 3, 0.2) == pytest.approx(1.0)


def test_binomial_tails_exact() -> None:
    assert stats.binom_cdf(3, 10, 0.5) == pytest.approx(176 / 1024, abs=1e-15)
    assert stats.binom_sf(8, 10, 0.5) == pytest.approx(56 / 1024, abs=1e-15)
    assert stats.binom_cdf(-1, 10, 0.5) == 0.0 and stats.binom_cdf(10, 10, 0.5) == 1.0
    # The two tails partition the distribution, also far in the tail of a large n.
    for k in (0, 5, 80, 100, 130):
        assert stats.binom_cdf(k, 10_000, 0.01) + stats.binom_sf(k + 1, 10_000, 0.01) == \
            pytest.approx(1.0, abs=1e-9)  # log-space rounding at n = 10,000
    # Matches the incomplete beta identity P(X <= k) = I_{1-p}(n - k, k + 1).
    assert stats.binom_cdf(7, 40, 0.3) == pytest.approx(stats.betainc(33, 8, 0.7), rel=1e-10)


def test_clopper_pearson_known_values() -> None:
    low, high = stats.clopper_pearson(0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(1 - 0.05 ** (1 / 10), abs=1e-9)
    low, high = stats.clopper_pearson(10, 10, 0.95)
    assert high == 1.0 and low == pytest.approx(0.05 ** (1 / 10), abs=1e-9)
    # Two-sided 95% for 5/10 = one-sided 97.5% each side.
    low, high = stats.clopper_pearson(5, 10, 0.975)
    assert low == pytest.approx(0.187086, abs=1e-6) and high == pytest.approx(0.812914, abs=1e-6)


def test_wilson_known_value() -> None:
    # Two-sided 95% on 5/10: each end is the one-sided 97.5% bound.
    low, high = stats.wilson_interval(0.5, 10, 0.95)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)


def test_wilson_interval_stays_within_bounds() -> None:
    lo, hi = stats.wilson_interval(1.0, 10, 0.95)
    assert 0.6 < lo < 1.0 and hi == 1.0
    assert stats.wilson_interval(0.5, 0, 0.95) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("p", "confidence", "n"),
    [(0.99, 0.99, 459), (0.90, 0.99, 44), (0.99, 0.95, 299), (0.95, 0.95, 59), (0.999, 0.99, 4603)],
)
def test_min_samples_zero_overs(p: float, confidence: float, n: int) -> None:
    assert stats.min_samples_for_percentile(p, confidence) == n
    assert stats.percentile_proven_at_most(n, 0, p, confidence)
    assert not stats.percentile_proven_at_most(n - 1, 0, p, confidence)


def test_min_samples_with_overs() -> None:
    n = stats.min_samples_for_percentile(0.99, 0.99, over=1)
    assert stats.percentile_proven_at_most(n, 1, 0.99, 0.99)
    assert not stats.percentile_proven_at_most(n - 1, 1, 0.99, 0.99)
    assert n == 662  # P(Bin(662, .01) <= 1) just below 1%


def test_quantile_bounds_match_count_rule() -> None:
    # The upper order-statistic bound X_(j) and the "k over the limit" rule are the same test.
    n, p, c = 2048, 0.90, 0.99
    low_rank, high_rank = stats.quantile_bound_ranks(n, p, c)
    allowed = n - high_rank
    assert stats.percentile_proven_at_most(n, allowed, p, c)
    assert not stats.percentile_proven_at_most(n, allowed + 1, p, c)
    assert low_rank < round(n * p) < high_rank
    assert stats.quantile_bound_ranks(100, 0.5, 0.95) == (42, 59)  # median, known ranks


def test_percentile_decision_pass_fail_inconclusive() -> None:
    x = np.arange(1, 1001, dtype=float)  # 1..1000 ms
    d = stats.percentile_decision(x, 0.99, 1000.0, "<=", 0.95)
    assert d.verdict == "pass" and d.estimate == pytest.approx(990.01)
    d = stats.percentile_decision(x, 0.99, 995.0, "<=", 0.95)  # 5 of 1000 over: not enough proof
    assert d.verdict == "inconclusive" and d.more_needed is not None and d.more_needed > 0
    d = stats.percentile_decision(x, 0.99, 960.0, "<=", 0.95)  # 40 over: p99 is above
    assert d.verdict == "fail"
    assert d.low is not None and d.low > 960.0
    d = stats.percentile_decision(x, 0.5, 400.0, ">=", 0.95)  # floor on the median
    assert d.verdict == "pass"


def test_mcnemar_exact_one_sided() -> None:
    assert stats.mcnemar_worse(10, 2) == pytest.approx(79 / 4096, rel=1e-12)
    assert stats.mcnemar_worse(0, 0) == 1.0
    assert stats.mcnemar_worse(3, 3) > 0.5
    assert stats.mcnemar_worse(5, 0) == pytest.approx(1 / 32, rel=1e-12)
    assert stats.mcnemar_worse(5, 2) == pytest.approx(29 / 128, rel=1e-12)
    assert stats.mcnemar_worse(0, 5) == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_worse(-1, 3)


def test_standard_error() -> None:
    assert stats.standard_error(0.5, 100) == pytest.approx(0.05)
    assert stats.standard_error(0.9, 0) == math.inf
    assert stats.standard_error(1.0, 10) == 0.0 and stats.standard_error(0.0, 10) == 0.0


@pytest.mark.parametrize("p", [97.5, 1.0001, -0.01, math.nan])
def test_standard_error_rejects_a_percent_or_a_non_proportion(p: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        stats.standard_error(p, 100)


def test_items_needed_for_a_one_point_drop_match_the_design_numbers() -> None:
    # ACCURACY.md: about 5,700 items at 90% accuracy and about 2,000 at 97% (95% one-sided, 80% power).
    assert 5_400 <= stats.items_needed(0.90, 0.01, 0.95) <= 5_800
    assert 1_700 <= stats.items_needed(0.97, 0.01, 0.95) <= 2_100
    assert stats.items_needed(0.9, 0.0, 0.95) == math.inf


def test_resolvable_drop_shrinks_with_items() -> None:
    small = stats.resolvable_drop(stats.standard_error(0.9748, 159), 0.95)
    large = stats.resolvable_drop(stats.standard_error(0.9748, 1590), 0.95)
    assert small == pytest.approx(0.0309, abs=0.0005)
    assert large == pytest.approx(small / 10**0.5)


def test_paired_bootstrap_is_deterministic_and_directional() -> None:
    ref = [1.0] * 40
    worse = [0.5] * 10 + [1.0] * 30
    assert stats.paired_bootstrap_worse(ref, worse) == stats.paired_bootstrap_worse(ref, worse)
    assert stats.paired_bootstrap_worse(ref, worse) < 0.01
    assert stats.paired_bootstrap_worse(ref, ref) == 1.0
    assert stats.paired_bootstrap_worse([], []) == 1.0


def test_proportion_decision_and_zero_ceiling() -> None:
    assert stats.proportion_decision(2, 1000, 0.01, "<=", 0.95).verdict == "pass"
    assert stats.proportion_decision(30, 1000, 0.01, "<=", 0.95).verdict == "fail"
    d = stats.proportion_decision(8, 1000, 0.01, "<=", 0.95)
    assert d.verdict == "inconclusive" and d.more_needed is not None
    assert stats.proportion_decision(0, 50, 0.0, "<=", 0.95).verdict == "pass"
    zero = stats.proportion_decision(1, 5000, 0.0, "<=", 0.95)
    assert zero.verdict == "fail" and "observed count" in zero.method
    assert stats.proportion_decision(0, 0, 0.01, "<=", 0.95).verdict == "inconclusive"


def test_mean_decision() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(100.0, 10.0, 400)
    assert stats.mean_decision(x, 110.0, "<=", 0.95).verdict == "pass"
    assert stats.mean_decision(x, 90.0, "<=", 0.95).verdict == "fail"
    d = stats.mean_decision(x, float(x.mean()) + 0.1, "<=", 0.95)
    assert d.verdict == "inconclusive" and d.more_needed is not None
    half = stats.t_quantile(0.95, 399) * x.std(ddof=1) / math.sqrt(400)
    assert d.high == pytest.approx(x.mean() + half)


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.normal(size=n)
    x = np.empty(n)
    prev = rng.normal() / math.sqrt(1 - phi * phi)
    for i in range(n):
        prev = phi * prev + e[i]
        x[i] = prev
    return x


def test_autocorr_time_and_batch_plan() -> None:
    rng = np.random.default_rng(1)
    tau, ok = stats.autocorr_time(rng.normal(size=4000))
    assert ok and tau == pytest.approx(1.0, abs=0.3)
    tau, ok = stats.autocorr_time(_ar1(rng, 20_000, 0.9))
    assert ok and tau == pytest.approx(19.0, rel=0.2)  # (1 + phi) / (1 - phi)
    # Batches span >= 6 tau, never more than 30 of them, and never shorter than min_batch.
    assert stats.batch_plan(600, 19.0) == (5, 120)  # 114 -> 5 batches, grown to use all data
    assert stats.batch_plan(3000, 1.0) == (30, 100)
    assert stats.batch_plan(300, 1.0, min_batch=30) == (10, 30)
    assert stats.batch_plan(100, 19.0)[0] < stats.MIN_BATCHES
    assert stats.batch_plan(40, 1.0, min_batch=12) == (3, 13)  # a 5 s window of 0.125 s buckets
    means, size = stats.batch_means(np.arange(23.0), 5)
    assert size == 4 and means.tolist() == [4.5, 8.5, 12.5, 16.5, 20.5]  # first 3 dropped


def test_series_decision_verdicts_and_too_short() -> None:
    rng = np.random.default_rng(7)
    x = 100.0 + rng.normal(0.0, 10.0, 600)
    assert stats.series_decision(x, 95.0, ">=", 0.95).verdict == "pass"
    assert stats.series_decision(x, 105.0, ">=", 0.95).verdict == "fail"
    d = stats.series_decision(x, float(x.mean()), ">=", 0.95)
    assert d.verdict == "inconclusive" and d.more_needed is not None
    short = stats.series_decision(x[:6], 50.0, ">=", 0.95)
    assert short.verdict == "inconclusive" and short.more_needed == 4.0
    # 100 s cannot hold 3 batches of at least 40 s: open, however clear the data looks.
    capped = stats.series_decision(x[:100], 50.0, ">=", 0.95, min_batch=40)
    assert capped.verdict == "inconclusive" and capped.more_needed == 20.0
    assert "too short" in capped.method and "3 batches of at least 40 s" in capped.method
    assert stats.series_decision(x[:100], 50.0, ">=", 0.95, min_batch=30).verdict == "pass"


def test_series_decision_short_correlated_series_stays_open() -> None:
    rng = np.random.default_rng(5)
    x = _ar1(rng, 60, 0.99)  # a slow wander: 60 points cannot show where correlation ends
    d = stats.series_decision(x, -100.0, ">=", 0.95)
    assert d.verdict == "inconclusive"


def test_batch_means_bound_covers_mean_of_autocorrelated_series() -> None:
    # AR(1) with lag-1 correlation 0.9: naive i.i.d. bounds would miss far more than 5%.
    rng = np.random.default_rng(11)
    misses = 0
    reps = 300
    for _ in range(reps):
        x = _ar1(rng, 600, 0.9)
        d = stats.series_decision(x, 0.0, ">=", 0.95)
        misses += d.low is not None and d.low > 0.0
    assert misses / reps <= 0.09  # nominal 5%, with room for Monte Carlo error


def test_ou_mean_variance_matches_a_fine_discrete_process() -> None:
    # Exponential correlation exp(-|i - j| / theta) over n points: the variance of their mean.
    theta = 200.0
    for n in (20, 200, 1000, 5000):
        lags = np.arange(n)
        weights = np.where(lags == 0, 1.0, 2.0) * (n - lags) / n**2
        exact = float(np.sum(weights * np.exp(-lags / theta)))
        assert stats.ou_mean_variance(n / theta) == pytest.approx(exact, rel=0.01)
    assert stats.ou_mean_variance(0.0) == 1.0
    assert stats.ou_mean_variance(1e-6) == pytest.approx(1.0, abs=1e-6)
    assert stats.ou_mean_variance(1000.0) == pytest.approx(2 / 1000, rel=2e-3)


def test_unseen_drift_share() -> None:
    # A window far shorter than the drift: batch means see almost none of it.
    assert stats.unseen_drift_share(3.0, 1.0, 3, 1000.0) == pytest.approx(1.0, abs=0.01)
    # Batches far longer than the drift: what is missed is about V(window) * drift / batch.
    window, batch, b, drift = 3000.0, 100.0, 30, 5.0
    whole = stats.ou_mean_variance(window / drift)
    assert stats.unseen_drift_share(window, batch, b, drift) == pytest.approx(
        whole * drift / batch, rel=0.05)
    assert stats.unseen_drift_share(window, batch, b, 0.0) == 0.0
    # Shrinks as the window grows, for the same number of batches.
    shares = [stats.unseen_drift_share(w, w / 5, 5, 5.0) for w in (5.0, 20.0, 80.0, 320.0)]
    assert shares == sorted(shares, reverse=True) and shares[-1] < 0.01
    with pytest.raises(ValueError):
        stats.unseen_drift_share(10.0, 10.0, 1, 5.0)


def _drifting(rng: np.random.Generator, n: int, level: float, drift_sd: float, drift_time: float,
              noise_sd: float) -> np.ndarray:
    """level * (1 + drift) + noise: a stationary AR(1) drift with exponential correlation time."""
    phi = math.exp(-1.0 / drift_time)
    d = np.empty(n)
    prev = rng.normal() * drift_sd
    for i, e in enumerate(rng.normal(size=n) * drift_sd * math.sqrt(1 - phi * phi)):
        prev = phi * prev + e
        d[i] = prev
    return level * (1.0 + d) + rng.normal(size=n) * noise_sd


def test_drift_allowance_keeps_short_windows_calibrated() -> None:
    # 40 observations of a level drifting by 10% with a correlation time of 200 observations, at
    # exactly the threshold: the window cannot show the drift, and plain batch means claim PASS or
    # FAIL far too often; with the allowance for that drift each stays near its nominal 5%.
    rng = np.random.default_rng(13)
    reps = 600
    plain: Counter[str] = Counter()
    allowed: Counter[str] = Counter()
    for _ in range(reps):
        x = _drifting(rng, 40, 100.0, 0.10, 200.0, 3.0)
        plain[stats.series_decision(x, 100.0, ">=", 0.95, min_batch=4).verdict] += 1
        allowed[stats.series_decision(x, 100.0, ">=", 0.95, min_batch=4, drift_sd=0.10,
                                      drift_time=200.0).verdict] += 1
    assert plain["pass"] / reps > 0.15 and plain["fail"] / reps > 0.15
    # Nominal 5% each; 8.5% leaves room for the Monte Carlo error of 600 runs.
    assert allowed["pass"] / reps <= 0.085 and allowed["fail"] / reps <= 0.085, allowed
    assert allowed["pass"] + allowed["fail"] > 0


def test_level_bounds() -> None:
    # Without a relative part: the plain estimate ± q · sd.
    assert stats.level_bounds(100.0, 4.0, 0.0, 2.0) == pytest.approx((96.0, 104.0))
    # Only a relative part: the levels from which 100 lies q · r · level away.
    low, high = stats.level_bounds(100.0, 0.0, 0.1, 2.0)
    assert low == pytest.approx(100.0 / 1.2) and high == pytest.approx(100.0 / 0.8)
    # Each bound is the level whose own spread reaches the estimate.
    low, high = stats.level_bounds(100.0, 9.0, 0.05, 1.645)
    for mu in (low, high):
        assert abs(100.0 - mu) == pytest.approx(1.645 * math.sqrt(9.0 + (0.05 * mu) ** 2))
    assert stats.level_bounds(100.0, 1.0, 0.5, 2.0) == (None, None)


def test_drift_allowance_decides_a_clear_margin_on_a_short_window() -> None:
    rng = np.random.default_rng(18)
    x = _drifting(rng, 40, 100.0, 0.10, 200.0, 2.0)
    # Without the allowance a window this short for its correlation is left open ...
    plain = stats.series_decision(x, 50.0, ">=", 0.95, min_batch=13)
    assert plain.verdict == "inconclusive" and "cannot be estimated yet" in plain.method
    # ... with it, batches of min_batch carry the data and the allowance the unseen drift.
    kw = {"min_batch": 13, "drift_sd": 0.10, "drift_time": 200.0}
    d = stats.series_decision(x, 50.0, ">=", 0.9975, **kw)
    assert d.verdict == "pass" and d.low is not None and 50.0 < d.low < float(x.mean())
    assert "3 batches of 13 s" in d.method and "drift allowance (10% over 200 s" in d.method
    assert d.high is not None and d.high - d.estimate > d.estimate - d.low  # a relative spread
    fail = stats.series_decision(x, 200.0, ">=", 0.9975, **kw)
    assert fail.verdict == "fail" and fail.high is not None and fail.high < 200.0
    # Near the threshold it stays open and says how much longer a window would likely do.
    near = stats.series_decision(x, float(x.mean()) * 0.97, ">=", 0.95, **kw)
    assert near.verdict == "inconclusive" and near.more_needed is not None and near.more_needed > 40
    # Too short even for MIN_BATCHES batches of min_batch: open, asking for them.
    short = stats.series_decision(x, 50.0, ">=", 0.95, min_batch=20, drift_sd=0.10,
                                  drift_time=200.0)
    assert short.verdict == "inconclusive" and short.more_needed == 20.0
    assert "3 batches of at least 20 s needed" in short.method


def test_drift_allowance_fades_on_long_windows() -> None:
    # 6000 observations with batches of 200: what batches that long miss of a drift with a
    # correlation time of 5 observations is about 5 / 200 of the window mean's drift variance.
    rng = np.random.default_rng(19)
    x = 100.0 + rng.normal(0.0, 30.0, 6000)
    plain = stats.series_decision(x, 0.0, ">=", 0.95)
    allowed = stats.series_decision(x, 0.0, ">=", 0.95, drift_sd=0.10, drift_time=5.0)
    assert plain.low is not None and allowed.low is not None
    assert plain.estimate == allowed.estimate and "30 batches of 200 s" in allowed.method
    assert 0 < plain.low - allowed.low < 0.05 * (plain.estimate - plain.low)
    share = stats.unseen_drift_share(6000, 200, 30, 5.0)
    assert share == pytest.approx(stats.ou_mean_variance(6000 / 5.0) * 5 / 200, rel=0.05)


def test_per_look_confidence() -> None:
    assert stats.per_look_confidence(0.95, 20) == pytest.approx(0.9975)
    assert stats.per_look_confidence(0.95, 1) == 0.95
    with pytest.raises(ValueError):
        stats.per_look_confidence(0.95, 0)


# --- incomplete beta, binomial tails and Clopper-Pearson against scipy ----------------------------

_NS = (1, 2, 5, 10, 37, 100, 1_000, 10_000, 100_000, 1_000_000)
_CONFIDENCES = (0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.999, 0.9999975)


def _ks(n: int) -> list[int]:
    return sorted({k for k in (0, 1, 2, n // 100, n // 3, n // 2, n - 2, n - 1, n) if 0 <= k <= n})


def test_clopper_pearson_matches_beta_quantiles_of_scipy() -> None:
    beta = pytest.importorskip("scipy.stats").beta
    worst = 0.0
    for n in _NS:
        for k in _ks(n):
            for c in _CONFIDENCES:
                low, high = stats.clopper_pearson(k, n, c)
                want_low = 0.0 if k == 0 else float(beta.ppf(1 - c, k, n - k + 1))
                want_high = 1.0 if k == n else float(beta.ppf(c, k + 1, n - k))
                worst = max(worst, abs(low - want_low), abs(high - want_high))
                assert abs(low - want_low) <= 1e-10, (k, n, c, low, want_low)
                assert abs(high - want_high) <= 1e-10, (k, n, c, high, want_high)
    assert worst > 0.0  # the comparison ran on computed values, not only closed forms


def test_clopper_pearson_edges_and_errors() -> None:
    assert stats.clopper_pearson(0, 1, 0.95) == (0.0, pytest.approx(0.95))
    assert stats.clopper_pearson(1, 1, 0.95) == (pytest.approx(0.05), 1.0)
    for bad in ((-1, 10, 0.95), (11, 10, 0.95), (0, 0, 0.95), (3, 10, 1.0)):
        with pytest.raises(ValueError):
            stats.clopper_pearson(*bad)


def test_clopper_pearson_is_fast_at_a_million_trials() -> None:
    # The bounds used to sum the binomial pmf at every bisection step (0.6 s at n = 100,000); now
    # a handful of incomplete-beta evaluations (target < 10 ms; the bound here leaves room for a
    # loaded machine but still catches a return to O(n) work).
    stats.clopper_pearson(3, 10, 0.95)
    times = []
    for k in (1, 10_000, 333_333, 500_000, 999_999):
        t0 = time.perf_counter()
        stats.clopper_pearson(k, 1_000_000, 0.95)
        times.append(time.perf_counter() - t0)
    assert sorted(times)[len(times) // 2] < 0.05, times


def test_binomial_tails_match_scipy() -> None:
    binom = pytest.importorskip("scipy.stats").binom
    for n in (1, 7, 100, 10_000, 1_000_000):
        for p in (1e-6, 0.01, 0.3, 0.5, 0.99):
            for k in _ks(n) + [round(n * p)]:
                assert stats.binom_cdf(k, n, p) == pytest.approx(float(binom.cdf(k, n, p)), rel=1e-8, abs=1e-300)
                assert stats.binom_sf(k, n, p) == pytest.approx(float(binom.sf(k - 1, n, p)), rel=1e-8, abs=1e-300)
    assert stats.binom_cdf(3, 10, 0.0) == 1.0 and stats.binom_cdf(3, 10, 1.0) == 0.0
    assert stats.binom_sf(3, 10, 0.0) == 0.0 and stats.binom_sf(3, 10, 1.0) == 1.0


def test_betainc_and_its_inverse_match_scipy() -> None:
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(17)
    for _ in range(400):
        a, b = 10 ** rng.uniform(-1.5, 6.5, size=2)
        x = float(rng.uniform())
        assert stats.betainc(a, b, x) == pytest.approx(float(special.betainc(a, b, x)), rel=1e-8, abs=1e-300)
        p = float(rng.choice([rng.uniform(), 10 ** rng.uniform(-12, -1), 1 - 10 ** rng.uniform(-12, -1)]))
        assert stats.betaincinv(a, b, p) == pytest.approx(float(special.betaincinv(a, b, p)), abs=1e-10)
    assert stats.betaincinv(2.0, 3.0, 0.0) == 0.0 and stats.betaincinv(2.0, 3.0, 1.0) == 1.0


# --- summaries ------------------------------------------------------------------------------------

def test_quantile_trailing_mean_and_ema() -> None:
    assert stats.quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert stats.quantile([5.0], 0.99) == 5.0
    with pytest.raises(ValueError):
        stats.quantile([], 0.5)
    assert stats.trailing_mean([1.0, 2.0, 3.0, math.nan, 5.0, 6.0, 7.0], 2)[:3] == [None, 1.5, 2.5]
    tail = stats.trailing_mean([1.0, 2.0, 3.0, math.nan, 5.0, 6.0, 7.0], 2)[3:]
    assert math.isnan(tail[0]) and math.isnan(tail[1]) and tail[2:] == [5.5, 6.5]
    assert stats.ema([1.0, 3.0, 3.0], 3) == [1.0, 2.0, 2.5]
