"""Paired bootstrap test for per-item scores that are not 0/1 (means over repeats)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_DRAWS_PER_CHUNK = 2_000_000  # index draws held in memory at once


def paired_bootstrap_worse(
    reference: Sequence[float], current: Sequence[float], *, resamples: int = 10000, seed: int = 0
) -> float:
    """One-sided paired bootstrap p-value that `current` scores lower than `reference` item by item.

    The share of resamples (items drawn with replacement, pairs kept together) in which the current
    mean is not below the reference mean; 1.0 with no items. Deterministic for a given seed.
    """
    diffs = np.asarray(reference, dtype=float) - np.asarray(current, dtype=float)
    n = len(diffs)
    if n == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    not_worse = 0
    chunk = max(1, _DRAWS_PER_CHUNK // n)
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        sums = diffs[rng.integers(0, n, size=(size, n))].sum(axis=1)
        not_worse += int(np.count_nonzero(sums <= 0))
        done += size
    return not_worse / resamples
