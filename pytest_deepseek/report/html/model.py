"""What the HTML report shows, as plain data: the run's results and the series re-read for its plots.

Built by `load.py` from a run folder; turned into figures and HTML by the other modules without
touching the disk. Series are already thinned for plotting (a few hundred points each); tables
are built from the results, never from the thinned series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..entries import CollectedResult


@dataclass(frozen=True)
class BoxStats:
    """A distribution as a box plot draws it: whiskers at p1 and p99, box p25..p75, median, mean."""

    p1: float
    p25: float
    p50: float
    p75: float
    p99: float
    mean: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "BoxStats | None":
        """The statistics of the finite values (None when there are none)."""
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return None
        q = np.quantile(x, [0.01, 0.25, 0.5, 0.75, 0.99])
        return cls(*(float(v) for v in q), mean=float(x.mean()), n=int(x.size))


@dataclass(frozen=True)
class RateSeries:
    """Output tokens per second per node over a scenario's run, in equal buckets.

    Times are seconds since the first measured request was sent; `steady` is the steady-state
    window the load generator reported (None when the run never had one).
    """

    t_s: np.ndarray  # bucket starts
    per_node: np.ndarray  # tokens/s per node in each bucket
    bucket_s: float
    steady: tuple[float, float] | None


@dataclass(frozen=True)
class ScenarioSeries:
    """What a serving scenario's request records give the plots."""

    ttft_ms: BoxStats | None
    tpot_ms: BoxStats | None
    rate: RateSeries | None
    requests: int  # measured request records read


@dataclass(frozen=True)
class Curve:
    """A series over iterations, thinned for plotting: where several records were merged into one
    point, `y` is their mean and `lo`/`hi` their extremes (spikes stay visible)."""

    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    points: int  # records behind the curve

    @property
    def thinned(self) -> bool:
        """True when points were merged."""
        return self.points > self.x.size


@dataclass(frozen=True)
class TrainingSeries:
    """A training entry's metrics over iterations, re-read from its log with the gate's parsers."""

    curves: Mapping[str, Curve]  # metric name -> its values (derived speeds included)
    statistic: Curve | None  # the converge statistic (window mean, EMA) when it is not `raw`
    warmup_iters: int
    within: int | None
    problem: str | None = None  # why the log could not be read again (then there are no curves)


@dataclass(frozen=True)
class RunReport:
    """A run folder read for the report.

    `paths` maps every path the results name to where it is now (a folder that was moved or copied
    elsewhere is looked up under its new place; None when it is gone). `scenarios` is keyed by
    (nodeid, scenario id), `training` by (profile, entry name).
    """

    run_dir: str
    run: Mapping[str, Any]
    entries: Sequence[CollectedResult]
    incomplete: Sequence[Mapping[str, Any]] = ()
    scenarios: Mapping[tuple[str, str], ScenarioSeries] = field(default_factory=dict)
    training: Mapping[tuple[str, str], TrainingSeries] = field(default_factory=dict)
    paths: Mapping[str, str | None] = field(default_factory=dict)
    files: Sequence[str] = ()  # the run's own files (summary, records, CSV), each a key of `paths`
    notes: Sequence[str] = ()  # what the reader skipped (torn lines, unreadable material)
