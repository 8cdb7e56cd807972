"""Statistics helpers: standard error, sample sizes quoted in ACCURACY.md, McNemar, bootstrap."""

from __future__ import annotations

import pytest

from pytest_deepseek.accuracy import binomial


def test_items_needed_for_a_one_point_drop_match_the_design_numbers() -> None:
    # ACCURACY.md: about 5,700 items at 90% accuracy and about 2,000 at 97% (95% one-sided, 80% power).
    assert 5_400 <= binomial.items_needed(0.90, 0.01, 0.95) <= 5_800
    assert 1_700 <= binomial.items_needed(0.97, 0.01, 0.95) <= 2_100


def test_resolvable_drop_shrinks_with_items() -> None:
    small = binomial.resolvable_drop(binomial.standard_error(0.9748, 159), 0.95)
    large = binomial.resolvable_drop(binomial.standard_error(0.9748, 1590), 0.95)
    assert small == pytest.approx(0.0309, abs=0.0005)
    assert large == pytest.approx(small / 10**0.5)


def test_wilson_interval_stays_within_bounds() -> None:
    lo, hi = binomial.wilson_interval(1.0, 10, 0.95)
    assert 0.6 < lo < 1.0 and hi == 1.0
    assert binomial.wilson_interval(0.5, 0, 0.95) == (0.0, 1.0)


def test_mcnemar_exact_one_sided() -> None:
    assert binomial.mcnemar_worse(0, 0) == 1.0
    assert binomial.mcnemar_worse(5, 0) == pytest.approx(1 / 32)
    assert binomial.mcnemar_worse(5, 2) == pytest.approx(29 / 128)
    assert binomial.mcnemar_worse(0, 5) == 1.0


def test_paired_bootstrap_is_deterministic_and_directional() -> None:
    ref = [1.0] * 40
    worse = [0.5] * 10 + [1.0] * 30
    assert binomial.paired_bootstrap_worse(ref, worse) == binomial.paired_bootstrap_worse(ref, worse)
    assert binomial.paired_bootstrap_worse(ref, worse) < 0.01
    assert binomial.paired_bootstrap_worse(ref, ref) == 1.0
    assert binomial.paired_bootstrap_worse([], []) == 1.0
