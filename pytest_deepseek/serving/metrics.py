"""Serving metrics of one run, exactly as METRICS.md defines them.

Inputs are the client's `RequestRecord`s and the load generator's `RunTimeline`; the output is a
`RunMetrics` whose `to_dict()` is the summary.json shape. Pure computation: no I/O.

Which records count where:
- warmup records are ignored everywhere;
- completed = `success`; failed = not `success` with an `error_kind`;
- a record that is neither (not `success`, no `error_kind`) is a request still in flight when the
  metrics are taken (an interim look during early stopping). Its token events so far count in the
  windowed token and concurrency figures, never in completed/failed or latency figures;
- tokens of failed requests are not counted as output: a broken stream is not delivered work.

Percentiles are sample quantiles with linear interpolation between order statistics (numpy's
default, Hyndman-Fan type 7). Times in the summary are milliseconds, throughputs per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from pytest_deepseek.serving.metric_names import (  # noqa: F401  (re-exported)
    LATENCY_METRICS,
    LATENCY_STATS,
    THROUGHPUT_BASES,
    base_metric,
    latency_names,
    throughput_names,
)
from pytest_deepseek.serving.records import RequestRecord, RunTimeline

WindowUsed = Literal["steady", "run", "none"]

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
SLO_KEYS = ("ttft_ms", "ttfo_ms", "tpot_ms", "e2e_ms")
SCALAR_METRICS = (
    "good_fraction",
    "error_rate",
    "completed",
    "failed",
    "good",
    "achieved_concurrency",
    "peak_concurrency",
    "window_s",
    "run_window_s",
    "tokens_per_chunk_mean",
)

_NS = 1e9
_MS = 1e6


def metric_names() -> list[str]:
    """Every name `RunMetrics.value` resolves."""
    return throughput_names() + list(SCALAR_METRICS) + latency_names()


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Mean and p50/p90/p95/p99 (linear interpolation) of one latency, in ms; None when empty."""

    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, values_ms: np.ndarray) -> "LatencySummary":
        """Summarize the finite values of an array."""
        x = values_ms[np.isfinite(values_ms)]
        if x.size == 0:
            return cls()
        q = np.quantile(x, [0.50, 0.90, 0.95, 0.99])
        return cls(float(x.mean()), float(q[0]), float(q[1]), float(q[2]), float(q[3]))

    def to_dict(self) -> dict[str, float | None]:
        """Plain-JSON form."""
        return {s: getattr(self, s) for s in LATENCY_STATS}


@dataclass(slots=True)
class RunMetrics:
    """All per-run serving figures. Throughputs are totals over the deployment (per second);
    the per-node and per-device variants are derived in `to_dict` / `value`."""

    output_throughput: float | None
    output_throughput_run_window: float | None
    input_throughput: float | None
    total_token_throughput: float | None
    request_throughput: float | None
    goodput: float | None
    good_fraction: float | None
    error_rate: float | None
    completed: int
    failed: int
    good: int
    failed_by_kind: dict[str, int]
    achieved_concurrency: float | None
    peak_concurrency: int
    window_used: WindowUsed
    window_s: float | None
    window_start_ns: int | None
    window_end_ns: int | None
    run_window_s: float | None
    run_start_ns: int | None
    run_end_ns: int | None
    ttft_ms: LatencySummary
    ttfo_ms: LatencySummary
    tpot_ms: LatencySummary
    e2e_ms: LatencySummary
    chunk_gap_ms: LatencySummary
    tokens_per_chunk_mean: float | None
    nodes: int = 1
    devices_per_node: int = 1
    slo: dict[str, float] = field(default_factory=dict)
    # Per-request values behind the summaries (ms), for the statistical checks. `chunk_tokens`
    # holds the tokens carried by the chunk that closes each pooled chunk gap.
    samples: dict[str, np.ndarray] = field(default_factory=dict)

    def _scaled(self, base: str) -> dict[str, float | None]:
        v = getattr(self, base)
        if v is None:
            return {base: None, f"{base}_per_node": None, f"{base}_per_device": None}
        return {
            base: v,
            f"{base}_per_node": v / self.nodes,
            f"{base}_per_device": v / (self.nodes * self.devices_per_node),
        }

    def to_dict(self) -> dict[str, Any]:
        """The summary.json shape (plain JSON types; None where undefined)."""
        out = self._scaled("output_throughput")
        out["output_throughput_run_window"] = self.output_throughput_run_window
        out.update(self._scaled("input_throughput"))
        out.update(
            total_token_throughput=self.total_token_throughput,
            request_throughput=self.request_throughput,
            goodput=self.goodput,
            good_fraction=self.good_fraction,
            error_rate=self.error_rate,
            completed=self.completed,
            failed=self.failed,
            failed_by_kind=dict(self.failed_by_kind),
            achieved_concurrency=self.achieved_concurrency,
            peak_concurrency=self.peak_concurrency,
            window_used=self.window_used,
            window_s=self.window_s,
        )
        for name in LATENCY_METRICS:
            out[name] = getattr(self, name).to_dict()
        out["tokens_per_chunk_mean"] = self.tokens_per_chunk_mean
        # Beyond the core shape: the remaining per-node/per-device variants and context.
        for base in ("output_throughput_run_window", "total_token_throughput",
                     "request_throughput", "goodput"):
            scaled = self._scaled(base)
            out[f"{base}_per_node"] = scaled[f"{base}_per_node"]
            out[f"{base}_per_device"] = scaled[f"{base}_per_device"]
        out.update(good=self.good, run_window_s=self.run_window_s, nodes=self.nodes,
                   devices_per_node=self.devices_per_node)
        return out

    def value(self, name: str) -> float | None:
        """Resolve a metric name (`output_throughput_per_node`, `ttft_ms.p99`, ...)."""
        if "." in name:
            base, _, stat = name.partition(".")
            if base in LATENCY_METRICS and stat in LATENCY_STATS:
                return getattr(getattr(self, base), stat)
        elif name in throughput_names():
            base = base_metric(name)
            return self._scaled(base)[name]
        elif name in SCALAR_METRICS:
            return getattr(self, name)
        raise KeyError(f"unknown serving metric {name!r}; valid names: {', '.join(metric_names())}")


# ---------------------------------------------------------------------------------------------
# Per-request helpers


def is_completed(r: RequestRecord) -> bool:
    """A measured request that succeeded."""
    return not r.warmup and r.success


def is_failed(r: RequestRecord) -> bool:
    """A measured request that ended in an error."""
    return not r.warmup and not r.success and r.error_kind is not None


def is_in_flight(r: RequestRecord) -> bool:
    """A measured request not finished yet (neither success nor an error kind)."""
    return not r.warmup and not r.success and r.error_kind is None


def event_token_weights(r: RequestRecord) -> np.ndarray:
    """Output tokens attributed to each token event of a record.

    The events' own counts are used when they add up to N (`n_tokens`). When they do not (a
    server that merges several tokens into one chunk without per-chunk usage, so the client
    counted 1 per event), N is spread over the events in proportion to their counts: each event
    gets event_tokens[i] * N / sum(event_tokens). Window counts then sum to exactly N, and
    fractional tokens are kept rather than rounded. Records still in flight have no final N;
    their event counts are used as they are.
    """
    times = r.event_times
    counts = r.event_tokens
    if len(counts) != len(times):
        counts = list(counts[: len(times)]) + [1] * max(0, len(times) - len(counts))
    w = np.asarray(counts, dtype=float)
    if not r.success or w.size == 0:
        return w
    n = float(r.n_tokens)
    s = float(sum(counts))
    if s == n:
        return w
    if s <= 0:
        return np.full(w.size, n / w.size)
    return w * (n / s)


def first_token_ns(r: RequestRecord) -> int | None:
    """Time of the first token event (any channel)."""
    if r.t_first_token is not None:
        return r.t_first_token
    return r.event_times[0] if r.event_times else None


def last_token_ns(r: RequestRecord) -> int | None:
    """Time of the last token event."""
    if r.t_last_token is not None:
        return r.t_last_token
    return r.event_times[-1] if r.event_times else None


def tpot_ms(r: RequestRecord) -> float | None:
    """(E2E - TTFT) / (N - n1) in ms, n1 = tokens in the first event; None when N <= n1."""
    t1, tn = first_token_ns(r), last_token_ns(r)
    if t1 is None or tn is None:
        return None
    n1 = r.event_tokens[0] if r.event_tokens else 1
    n = r.n_tokens
    if n <= n1:
        return None
    return (tn - t1) / _MS / (n - n1)


def request_latencies(r: RequestRecord) -> dict[str, float | None]:
    """TTFT, TTFO, E2E and TPOT of one record in ms (None where undefined)."""
    t1, tn = first_token_ns(r), last_token_ns(r)
    return {
        "ttft_ms": None if t1 is None else (t1 - r.t_send) / _MS,
        "ttfo_ms": None if r.t_first_answer is None else (r.t_first_answer - r.t_send) / _MS,
        "e2e_ms": None if tn is None else (tn - r.t_send) / _MS,
        "tpot_ms": tpot_ms(r),
    }


def meets_slo(r: RequestRecord, slo: Mapping[str, float]) -> bool:
    """True when a completed request meets every SLO in `slo` (keys from SLO_KEYS, in ms).

    An undefined TPOT (N <= n1: no decode phase) meets a TPOT SLO; an undefined TTFO (no answer
    token at all) does not meet a TTFO SLO.
    """
    if not r.success:
        return False
    lat = request_latencies(r)
    for key, limit in slo.items():
        v = lat[key]
        if v is None:
            if key == "tpot_ms":
                continue
            return False
        if v > limit:
            return False
    return True


def _check_slo(slo: Mapping[str, float] | None) -> dict[str, float]:
    slo = dict(slo or {})
    unknown = sorted(set(slo) - set(SLO_KEYS))
    if unknown:
        raise ValueError(f"unknown SLO key(s) {unknown}; valid keys: {', '.join(SLO_KEYS)}")
    return {k: float(v) for k, v in slo.items()}


# ---------------------------------------------------------------------------------------------
# Windows


def run_window(records: Sequence[RequestRecord], timeline: RunTimeline | None = None
               ) -> tuple[int, int] | None:
    """First measured t_send -> last measured token event; None when there is no token event."""
    measured = [r for r in records if not r.warmup]
    ends = [t for r in _counted(measured) if (t := last_token_ns(r)) is not None]
    if not ends:
        return None
    sends = [r.t_send for r in measured if r.t_send]
    start = min(sends) if sends else (timeline.t_start if timeline else None)
    end = max(ends)
    if start is None or end <= start:
        return None
    return start, end


def steady_window(timeline: RunTimeline) -> tuple[int, int] | None:
    """[t_load_reached, t_drain_start] when both are known and the window has positive length."""
    a, b = timeline.t_load_reached, timeline.t_drain_start
    if a is None or b is None or b <= a:
        return None
    return a, b


def _counted(records: Sequence[RequestRecord]) -> list[RequestRecord]:
    """Records whose token events count as output: completed and in flight."""
    return [r for r in records if not r.warmup and (r.success or r.error_kind is None)]


def _prompt_tokens(r: RequestRecord) -> int:
    if r.prompt_tokens is not None:
        return r.prompt_tokens
    return r.input_len or 0


def _token_arrays(records: Sequence[RequestRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times and attributed tokens of every counted token event, concatenated."""
    recs = [r for r in _counted(records) if r.event_times]
    if not recs:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    times = np.concatenate([np.asarray(r.event_times, dtype=np.int64) for r in recs])
    weights = np.concatenate([event_token_weights(r) for r in recs])
    return times, weights


def tokens_in_window(records: Sequence[RequestRecord], start_ns: int, end_ns: int) -> float:
    """Output tokens whose token event arrived in [start_ns, end_ns] (completed and in flight)."""
    times, weights = _token_arrays(records)
    mask = (times >= start_ns) & (times <= end_ns)
    return float(weights[mask].sum())


def _active_interval(r: RequestRecord, window_end: int) -> tuple[int, int] | None:
    if not r.t_send:
        return None
    if r.success:
        end = last_token_ns(r)
    elif r.error_kind is not None:
        end = r.t_end if r.t_end is not None else last_token_ns(r)
    else:
        end = window_end
    return None if end is None else (r.t_send, end)


def _peak_from_records(records: Sequence[RequestRecord], end_ns: int) -> int:
    edges: list[tuple[int, int]] = []
    for r in records:
        if r.warmup:
            continue
        iv = _active_interval(r, end_ns)
        if iv is not None:
            edges += [(iv[0], 1), (iv[1], -1)]
    edges.sort(key=lambda e: (e[0], e[1]))  # an end at the same instant frees the slot first
    peak = cur = 0
    for _, d in edges:
        cur += d
        peak = max(peak, cur)
    return peak


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True)
class _Outcomes:
    """The measured requests by how they ended."""

    measured: list[RequestRecord]
    completed: list[RequestRecord]
    failed: list[RequestRecord]
    good: list[RequestRecord]  # completed and meeting every SLO
    failed_by_kind: dict[str, int]

    @property
    def finished(self) -> int:
        return len(self.completed) + len(self.failed)


def _outcomes(records: Sequence[RequestRecord], slo: Mapping[str, float]) -> _Outcomes:
    measured = [r for r in records if not r.warmup]
    completed = [r for r in measured if r.success]
    failed = [r for r in measured if is_failed(r)]
    failed_by_kind: dict[str, int] = {}
    for r in failed:
        kind = r.error_kind or "unknown"
        failed_by_kind[kind] = failed_by_kind.get(kind, 0) + 1
    return _Outcomes(measured, completed, failed, [r for r in completed if meets_slo(r, slo)], failed_by_kind)


def _figure_window(run: tuple[int, int] | None, timeline: RunTimeline
                   ) -> tuple[tuple[int, int] | None, WindowUsed]:
    """The steady-state window, else the run window, else none."""
    steady = steady_window(timeline)
    if steady is not None:
        return steady, "steady"
    if run is not None:
        return run, "run"
    return None, "none"


@dataclass(frozen=True, slots=True)
class _WindowFigures:
    """Throughputs (per second, whole deployment) and achieved concurrency inside one window."""

    seconds: float | None = None
    output: float | None = None
    input: float | None = None
    requests: float | None = None
    goodput: float | None = None
    concurrency: float | None = None

    @property
    def total(self) -> float | None:
        return None if self.output is None or self.input is None else self.output + self.input


def _ends_in(r: RequestRecord, start: int, end: int) -> bool:
    return start <= (last_token_ns(r) or -1) <= end


def _window_figures(outcomes: _Outcomes, window: tuple[int, int] | None) -> _WindowFigures:
    if window is None:
        return _WindowFigures()
    start, end = window
    seconds = (end - start) / _NS
    measured = outcomes.measured
    prompts = sum(_prompt_tokens(r) for r in _counted(measured) if start <= r.t_send <= end)
    busy = 0
    for r in measured:
        interval = _active_interval(r, end)
        if interval is not None:
            busy += max(0, min(interval[1], end) - max(interval[0], start))
    return _WindowFigures(
        seconds=seconds,
        output=tokens_in_window(measured, start, end) / seconds,
        input=prompts / seconds,
        requests=sum(1 for r in outcomes.completed if _ends_in(r, start, end)) / seconds,
        goodput=sum(1 for r in outcomes.good if _ends_in(r, start, end)) / seconds,
        concurrency=busy / (end - start),
    )


def _latency_samples(completed: Sequence[RequestRecord]) -> dict[str, np.ndarray]:
    """Per-request latencies (ms) of the completed requests, pooled chunk gaps, and the tokens
    carried by the chunk closing each gap."""
    latencies: dict[str, list[float]] = {k: [] for k in SLO_KEYS}
    gaps: list[np.ndarray] = []
    chunk_tokens: list[np.ndarray] = []
    for r in completed:
        for k, v in request_latencies(r).items():
            if v is not None:
                latencies[k].append(v)
        if len(r.event_times) > 1:
            gaps.append(np.diff(np.asarray(r.event_times, dtype=np.int64)) / _MS)
            chunk_tokens.append(event_token_weights(r)[1:])
    samples = {k: np.asarray(v, dtype=float) for k, v in latencies.items()}
    samples["chunk_gap_ms"] = np.concatenate(gaps) if gaps else np.zeros(0)
    samples["chunk_tokens"] = np.concatenate(chunk_tokens) if chunk_tokens else np.zeros(0)
    return samples


def _tokens_per_chunk(completed: Sequence[RequestRecord]) -> float | None:
    events = sum(len(r.event_times) for r in completed)
    return sum(r.n_tokens for r in completed) / events if events else None


def compute_run_metrics(
    records: Sequence[RequestRecord],
    timeline: RunTimeline,
    *,
    nodes: int = 1,
    devices_per_node: int = 1,
    slo: Mapping[str, float] | None = None,
) -> RunMetrics:
    """Compute every per-run figure of METRICS.md from the records of one run.

    The window for the windowed figures is the steady-state window [t_load_reached,
    t_drain_start]; when it is missing or has no length the run window is used instead and
    `window_used` says "run" ("none" when there is no token event at all). Within the window:
    output tokens are counted at their event's arrival time (edge requests count partially);
    input tokens are the prompt tokens (usage, else the target input_len) of requests sent in the
    window; completed and good requests are those whose last token event falls in the window;
    achieved concurrency is the time-average of requests active in the window (Little's law).
    """
    if nodes < 1 or devices_per_node < 1:
        raise ValueError("nodes and devices_per_node must be >= 1")
    slo_map = _check_slo(slo)
    outcomes = _outcomes(records, slo_map)
    run = run_window(outcomes.measured, timeline)
    window, used = _figure_window(run, timeline)
    in_window = _window_figures(outcomes, window)
    run_s = (run[1] - run[0]) / _NS if run is not None else None
    samples = _latency_samples(outcomes.completed)
    peak = timeline.peak_concurrency
    if not peak and run is not None:
        peak = _peak_from_records(outcomes.measured, run[1])
    finished = outcomes.finished
    return RunMetrics(
        output_throughput=in_window.output,
        output_throughput_run_window=sum(r.n_tokens for r in outcomes.completed) / run_s if run_s else None,
        input_throughput=in_window.input,
        total_token_throughput=in_window.total,
        request_throughput=in_window.requests,
        goodput=in_window.goodput,
        good_fraction=len(outcomes.good) / finished if finished else None,
        error_rate=len(outcomes.failed) / finished if finished else None,
        completed=len(outcomes.completed),
        failed=len(outcomes.failed),
        good=len(outcomes.good),
        failed_by_kind=outcomes.failed_by_kind,
        achieved_concurrency=in_window.concurrency,
        peak_concurrency=int(peak),
        window_used=used,
        window_s=in_window.seconds,
        window_start_ns=window[0] if window else None,
        window_end_ns=window[1] if window else None,
        run_window_s=run_s,
        run_start_ns=run[0] if run else None,
        run_end_ns=run[1] if run else None,
        ttft_ms=LatencySummary.of(samples["ttft_ms"]),
        ttfo_ms=LatencySummary.of(samples["ttfo_ms"]),
        tpot_ms=LatencySummary.of(samples["tpot_ms"]),
        e2e_ms=LatencySummary.of(samples["e2e_ms"]),
        chunk_gap_ms=LatencySummary.of(samples["chunk_gap_ms"]),
        tokens_per_chunk_mean=_tokens_per_chunk(outcomes.completed),
        nodes=nodes,
        devices_per_node=devices_per_node,
        slo=slo_map,
        samples=samples,
    )


# ---------------------------------------------------------------------------------------------
# Per-second series for the floor decisions


def _edges(start_ns: int, end_ns: int, bucket_s: float) -> np.ndarray:
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    width = int(round(bucket_s * _NS))
    k = max(0, (end_ns - start_ns) // width)
    return start_ns + width * np.arange(k + 1, dtype=np.int64)


def _histogram(times: np.ndarray, weights: np.ndarray, edges: np.ndarray, bucket_s: float
               ) -> np.ndarray:
    if edges.size < 2:
        return np.zeros(0)
    counts, _ = np.histogram(times, bins=edges, weights=weights)
    return counts.astype(float) / bucket_s


def throughput_buckets(records: Sequence[RequestRecord], start_ns: int, end_ns: int,
                       bucket_s: float = 1.0) -> np.ndarray:
    """Output tokens per second in consecutive buckets of `bucket_s` from start_ns.

    Only whole buckets are returned (a tail shorter than one bucket is dropped); tokens are
    counted at their event's arrival, with the same attribution as the window figures.
    """
    times, weights = _token_arrays(records)
    return _histogram(times, weights, _edges(start_ns, end_ns, bucket_s), bucket_s)


def bucket_series(records: Sequence[RequestRecord], metrics: RunMetrics, *,
                  bucket_s: float = 1.0) -> dict[str, np.ndarray]:
    """Per-bucket series (per second, whole deployment) behind each throughput metric.

    Keys are the base throughput names. All but `output_throughput_run_window` cover the window
    `metrics` used; that one covers the run window. Input tokens count at t_send, requests and
    good requests at their last token event, output tokens at each token event.
    """
    out: dict[str, np.ndarray] = {}
    measured = [r for r in records if not r.warmup]
    if metrics.window_start_ns is not None and metrics.window_end_ns is not None:
        ws, we = metrics.window_start_ns, metrics.window_end_ns
        edges = _edges(ws, we, bucket_s)
        out["output_throughput"] = throughput_buckets(measured, ws, we, bucket_s)
        sent = [r for r in _counted(measured) if r.t_send]
        out["input_throughput"] = _histogram(
            np.asarray([r.t_send for r in sent], dtype=np.int64),
            np.asarray([_prompt_tokens(r) for r in sent], dtype=float), edges, bucket_s)
        out["total_token_throughput"] = out["output_throughput"] + out["input_throughput"]
        done = [r for r in measured if r.success and last_token_ns(r) is not None]
        done_t = np.asarray([last_token_ns(r) for r in done], dtype=np.int64)
        out["request_throughput"] = _histogram(done_t, np.ones(len(done)), edges, bucket_s)
        good_w = np.asarray([1.0 if meets_slo(r, metrics.slo) else 0.0 for r in done])
        out["goodput"] = _histogram(done_t, good_w, edges, bucket_s)
    if metrics.run_start_ns is not None and metrics.run_end_ns is not None:
        out["output_throughput_run_window"] = throughput_buckets(
            measured, metrics.run_start_ns, metrics.run_end_ns, bucket_s)
    return out
