"""Statistics for release verdicts: confidence bounds that say PASS, FAIL or INCONCLUSIVE.

Shared by the serving, training and accuracy gates; pure computation (no I/O). Everything is exact
or a documented numerical method on the standard library and numpy:

- `special`: regularised incomplete beta (continued fraction) and its inverse, Student t and
  normal quantiles;
- `binomial`: binomial tails, Clopper-Pearson and Wilson bounds, McNemar's exact test, sample
  sizes for proportions, `proportion_decision`;
- `means`: Student t bounds on a mean, batch means over an autocorrelated series with an optional
  allowance for drift slower than the series can show (`series_decision`);
- `percentiles`: the order-statistic / binomial rule MLPerf LoadGen uses for percentile limits;
- `decision`: the `Decision` shape, the verdict from bounds, Bonferroni over repeated looks;
- `summary`: sample quantile, trailing mean, EMA (standard library only);
- `bootstrap`: the paired bootstrap for non-binary per-item scores.

Every bound is one-sided at the stated confidence unless its name says otherwise
(`wilson_interval` is two-sided). `from pytest_deepseek import stats; stats.clopper_pearson(...)`
works for every public name; the submodule is imported on first use, so importing this package
costs nothing (numpy comes only with the parts that need it).
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "betainc": "special",
    "betaincinv": "special",
    "t_cdf": "special",
    "t_quantile": "special",
    "z": "special",
    "DEFAULT_POWER": "binomial",
    "binom_cdf": "binomial",
    "binom_sf": "binomial",
    "clopper_pearson": "binomial",
    "items_needed": "binomial",
    "mcnemar_worse": "binomial",
    "proportion_decision": "binomial",
    "resolvable_drop": "binomial",
    "standard_error": "binomial",
    "wilson_interval": "binomial",
    "Decision": "decision",
    "Op": "decision",
    "per_look_confidence": "decision",
    "BATCH_TAU_MULT": "means",
    "MAX_BATCHES": "means",
    "MIN_BATCHES": "means",
    "MIN_OBSERVATIONS": "means",
    "autocorr_time": "means",
    "batch_means": "means",
    "batch_plan": "means",
    "level_bounds": "means",
    "mean_decision": "means",
    "ou_mean_variance": "means",
    "series_decision": "means",
    "unseen_drift_share": "means",
    "min_samples_for_percentile": "percentiles",
    "percentile_decision": "percentiles",
    "percentile_proven_above": "percentiles",
    "percentile_proven_at_most": "percentiles",
    "quantile_bound_ranks": "percentiles",
    "ema": "summary",
    "quantile": "summary",
    "trailing_mean": "summary",
    "paired_bootstrap_worse": "bootstrap",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
