"""Plot series reduced from raw material, without I/O: a serving scenario's request records, a
training log's records.

Serving records are read once, one at a time: what is kept per scenario is two latencies per
request and a histogram of token arrivals on a 1 ms grid, so memory follows the run's length, not
its token count. Token attribution, latencies and which records count are the serving metrics'
own (`serving/metrics.py`), so the plots show what the gate judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...serving.judge import bucket_seconds_for
from ...serving.metrics import event_token_weights, is_completed, request_latencies, steady_window
from ...serving.records import RequestRecord, RunTimeline
from .model import BoxStats, Curve, RateSeries, ScenarioSeries, TrainingSeries

RATE_POINTS = 150  # buckets across a scenario's run
CURVE_POINTS = 600  # points of a training curve
_GRID_NS = 1_000_000  # token arrivals are kept on a 1 ms grid
_COMPACT_AT = 1 << 20  # pending arrivals merged into the grid beyond this many


class TokenArrivals:
    """Output tokens per 1 ms slot, accumulated record by record (memory: one entry per slot)."""

    def __init__(self) -> None:
        self._slots = np.zeros(0, dtype=np.int64)
        self._tokens = np.zeros(0)
        self._pending_slots: list[np.ndarray] = []
        self._pending_tokens: list[np.ndarray] = []
        self._pending = 0

    def add(self, times_ns: Sequence[int], tokens: np.ndarray) -> None:
        """Count `tokens[i]` at `times_ns[i]`."""
        if not len(times_ns):
            return
        self._pending_slots.append(np.asarray(times_ns, dtype=np.int64) // _GRID_NS)
        self._pending_tokens.append(np.asarray(tokens, dtype=float))
        self._pending += len(times_ns)
        if self._pending >= _COMPACT_AT:
            self._compact()

    def _compact(self) -> None:
        if not self._pending_slots:
            return
        slots = np.concatenate([self._slots, *self._pending_slots])
        tokens = np.concatenate([self._tokens, *self._pending_tokens])
        self._slots, inverse = np.unique(slots, return_inverse=True)
        self._tokens = np.bincount(inverse, weights=tokens, minlength=self._slots.size)
        self._pending_slots, self._pending_tokens, self._pending = [], [], 0

    def per_second(self, start_ns: int, end_ns: int, buckets: int, min_width_s: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, float]:
        """Bucket starts (s from `start_ns`), tokens/s in each bucket, and the bucket width: at most
        `buckets` equal buckets, none narrower than `min_width_s` nor than the grid."""
        self._compact()
        span_s = max((end_ns - start_ns) / 1e9, 1e-3)
        width = max(span_s / max(buckets, 1), min_width_s, _GRID_NS / 1e9)
        count = max(1, int(np.ceil(span_s / width)))
        edges = np.arange(count + 1) * width
        at_s = (self._slots * _GRID_NS - start_ns) / 1e9
        totals, _ = np.histogram(at_s, bins=edges, weights=self._tokens)
        return edges[:-1], totals / width, width


class ScenarioReducer:
    """One serving scenario's request records, reduced as they are read."""

    def __init__(self, nodes: int) -> None:
        self.nodes = max(1, int(nodes))
        self.ttft: list[float] = []
        self.tpot: list[float] = []
        self.arrivals = TokenArrivals()
        self.requests = 0

    def add(self, record: RequestRecord) -> None:
        """Take one request record (warmup records are not measured: skipped)."""
        if record.warmup:
            return
        self.requests += 1
        if is_completed(record):
            latencies = request_latencies(record)
            if latencies["ttft_ms"] is not None:
                self.ttft.append(latencies["ttft_ms"])
            if latencies["tpot_ms"] is not None:
                self.tpot.append(latencies["tpot_ms"])
        # the output tokens the gate counts: completed requests and those still in flight
        if (record.success or record.error_kind is None) and record.event_times:
            self.arrivals.add(record.event_times, event_token_weights(record))

    def finish(self, timeline: RunTimeline | None) -> ScenarioSeries:
        """The scenario's series; the rate needs the judged timeline (`scenario_end`)."""
        rate = None
        if timeline is not None and timeline.t_end > timeline.t_start:
            window = steady_window(timeline)
            # never finer than the buckets the gate judges the window in (bursty steps would show as noise)
            judged_s = (window[1] - window[0]) / 1e9 if window else (timeline.t_end - timeline.t_start) / 1e9
            t_s, per_s, width = self.arrivals.per_second(timeline.t_start, timeline.t_end, RATE_POINTS,
                                                         min_width_s=bucket_seconds_for(judged_s))
            steady = None if window is None else ((window[0] - timeline.t_start) / 1e9,
                                                  (window[1] - timeline.t_start) / 1e9)
            rate = RateSeries(t_s, per_s / self.nodes, width, steady)
        return ScenarioSeries(BoxStats.of(self.ttft), BoxStats.of(self.tpot), rate, self.requests)


def thin(x: Sequence[float], y: Sequence[float], points: int = CURVE_POINTS) -> Curve:
    """`x`, `y` in at most `points` points: consecutive values merged into their mean, min and max."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = xs.size
    if n <= points:
        return Curve(xs, ys, ys, ys, n)
    edges = np.linspace(0, n, points + 1).astype(int)
    starts = edges[:-1]
    counts = np.diff(edges)
    return Curve(np.add.reduceat(xs, starts) / counts, np.add.reduceat(ys, starts) / counts,
                 np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts), n)


def training_series(entry: Mapping[str, Any], records: Sequence[Any], info: Mapping[str, float]) -> TrainingSeries:
    """The curves of a training entry from its parsed log records (`training.records.Record`):
    every metric a criterion of the entry looks at (derived speeds as the gate derives them), and
    the converge statistic."""
    from ...training.records import Record
    from ...training.speed import DERIVED, Topology, derive
    from ...training.spec import read_entry
    from ...training.stats import statistic_series

    spec = read_entry(entry)
    rows = list(records)
    metrics = [b.metric for b in spec.bounds]
    if any(name in DERIVED for name in metrics):
        rows = [Record(r.iteration, dict(r.metrics), r.rank, r.time, r.file, r.lineno, r.line, r.epoch) for r in rows]
        derive(rows, Topology.resolve(spec, info))
    if spec.converge is not None:
        metrics.insert(0, spec.converge.metric)
    curves: dict[str, Curve] = {}
    for name in dict.fromkeys(metrics):
        have = [r for r in rows if name in r.metrics]
        if have:
            curves[name] = thin([r.iteration for r in have], [r.metrics[name] for r in have])
    statistic = None
    converge = spec.converge
    if converge is not None and converge.statistic != "raw":
        have = [r for r in rows if converge.metric in r.metrics]
        values = statistic_series([r.metrics[converge.metric] for r in have], converge.statistic, converge.window)
        pairs = [(r.iteration, v) for r, v in zip(have, values) if v is not None]
        if pairs:
            statistic = thin([p[0] for p in pairs], [p[1] for p in pairs])
    return TrainingSeries(curves, statistic, spec.warmup_iters, converge.within if converge else None)
