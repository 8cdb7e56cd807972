"""Synthetic closed-loop runs with a known true throughput, for testing the verdict machinery.

The model is a continuous-batching server: `concurrency` client slots, each always holding one
request until the prompt set runs out. Every engine step emits one token for every active
request (a new request's prefill and first token happen in its first step). A step lasts

    d_k = tau0 * m_k * (0.5 + 0.5 * active_k / concurrency) + prefill_s * new_k

where m_k is a mean-one log-normal slowdown driven by a stationary AR(1) process (slow drifts
that make per-second throughput autocorrelated) times i.i.d. jitter, and new_k counts requests
admitted in that step. Output lengths are uniform on [L/2, 3L/2]. With all slots busy, tokens
per step are exactly `concurrency`, so the long-run throughput is concurrency / E[d], and tau0 is
solved so that this equals the requested true throughput.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from pytest_deepseek.serving.records import RequestRecord, RunTimeline

T0_NS = 1_000_000_000


@dataclass(slots=True)
class SyntheticRun:
    """One generated run: client records, the load generator's timeline, and the truth."""

    records: list[RequestRecord]
    timeline: RunTimeline
    true_throughput: float  # tokens/s of the whole deployment, long-run steady state


def _lengths(rng: np.random.Generator, n: int, mean_len: int) -> np.ndarray:
    lo, hi = max(1, mean_len // 2), max(1, mean_len // 2) + mean_len
    return rng.integers(lo, hi, size=n)  # uniform on [lo, hi - 1]


def _schedule(lengths: np.ndarray, concurrency: int) -> tuple[np.ndarray, np.ndarray]:
    """Step index of each request's first token, in step units; all slots advance together."""
    n = lengths.size
    start = np.zeros(n, dtype=np.int64)
    free: list[tuple[int, int]] = [(0, s) for s in range(concurrency)]  # (next free step, slot)
    heapq.heapify(free)
    for j in range(n):
        step, slot = heapq.heappop(free)
        start[j] = step
        heapq.heappush(free, (step + int(lengths[j]), slot))
    return start, start + lengths - 1


def _slowdown(rng: np.random.Generator, steps: int, phi: float, sigma: float,
              jitter: float) -> np.ndarray:
    innov = rng.standard_normal(steps) * sigma * np.sqrt(1.0 - phi * phi)
    x = np.empty(steps)
    x_prev = rng.standard_normal() * sigma
    for k in range(steps):
        x_prev = phi * x_prev + innov[k]
        x[k] = x_prev
    j = rng.standard_normal(steps) * jitter
    return np.exp(x - sigma * sigma / 2.0 + j - jitter * jitter / 2.0)


def _step_ends(rng: np.random.Generator, start: np.ndarray, finish: np.ndarray, *, concurrency: int,
               tau0: float, prefill_s: float, ar_phi: float, ar_sigma: float, jitter_sigma: float) -> np.ndarray:
    """The end time (ns) of every engine step, from the active and newly admitted requests per step."""
    steps = int(finish.max()) + 1
    active = np.zeros(steps + 1, dtype=np.int64)
    np.add.at(active, start, 1)
    np.add.at(active, finish + 1, -1)
    active = np.cumsum(active)[:steps]
    new = np.bincount(start, minlength=steps)[:steps]
    m = _slowdown(rng, steps, ar_phi, ar_sigma, jitter_sigma)
    d = tau0 * m * (0.5 + 0.5 * active / concurrency) + prefill_s * new
    return T0_NS + np.round(np.cumsum(d) * 1e9).astype(np.int64)


def _client_records(seed: int, lengths: np.ndarray, start: np.ndarray, finish: np.ndarray, ends: np.ndarray,
                    *, input_len: int, client_delay_s: float) -> list[RequestRecord]:
    """What the client records: one token event per step, a send `client_delay_s` after the slot frees."""
    step_start = np.concatenate([[T0_NS], ends[:-1]])
    delay = int(client_delay_s * 1e9)
    records: list[RequestRecord] = []
    for j in range(lengths.size):
        s, f = int(start[j]), int(finish[j])
        t_send = T0_NS + j * 1000 if s == 0 else int(step_start[s]) + delay
        times = ends[s:f + 1].tolist()
        n = int(lengths[j])
        records.append(RequestRecord(
            index=j, request_id=f"syn-{seed}-{j}", api="completions", input_len=input_len,
            max_tokens=n, forced=False, t_queued=t_send, t_send=t_send, t_headers=t_send,
            t_first_token=times[0], t_first_answer=times[0], t_last_token=times[-1],
            t_end=times[-1], event_times=times, event_tokens=[1] * n,
            event_reasoning=[False] * n, prompt_tokens=input_len, completion_tokens=n,
            finish_reason="length", done_seen=True, status=200, success=True))
    return records


def _timeline(start: np.ndarray, finish: np.ndarray, ends: np.ndarray, concurrency: int) -> RunTimeline:
    """The load generator's timeline: drain starts when the first slot finishes after the last
    prompt was handed out."""
    num_prompts = start.size
    last_start = int(start.max())
    drain_step = int(finish[finish >= last_start].min()) if num_prompts > concurrency else 0
    return RunTimeline(
        mode="closed",
        t_start=T0_NS,
        t_load_reached=T0_NS + (min(concurrency, num_prompts) - 1) * 1000,
        t_drain_start=int(ends[drain_step]),
        t_end=int(ends[-1]),
        target_concurrency=concurrency,
        peak_concurrency=min(concurrency, num_prompts),
    )


def generate_run(
    true_throughput: float,
    *,
    seed: int,
    concurrency: int = 64,
    num_prompts: int = 10_000,
    mean_output_len: int = 128,
    input_len: int = 1024,
    prefill_s: float = 0.004,
    ar_phi: float = 0.995,
    ar_sigma: float = 0.10,
    jitter_sigma: float = 0.05,
    client_delay_s: float = 0.0005,
) -> SyntheticRun:
    """Generate one closed-loop run whose long-run output throughput is `true_throughput`."""
    rng = np.random.default_rng(seed)
    lengths = _lengths(rng, num_prompts, mean_output_len)
    mean_len = float(np.mean(np.arange(max(1, mean_output_len // 2),
                                       max(1, mean_output_len // 2) + mean_output_len)))
    tau0 = concurrency / true_throughput - prefill_s * concurrency / mean_len
    if tau0 <= 0:
        raise ValueError("true_throughput too high for this prefill cost and concurrency")
    start, finish = _schedule(lengths, min(concurrency, num_prompts))
    ends = _step_ends(rng, start, finish, concurrency=concurrency, tau0=tau0, prefill_s=prefill_s,
                      ar_phi=ar_phi, ar_sigma=ar_sigma, jitter_sigma=jitter_sigma)
    records = _client_records(seed, lengths, start, finish, ends, input_len=input_len,
                              client_delay_s=client_delay_s)
    return SyntheticRun(records, _timeline(start, finish, ends, concurrency), true_throughput)


def truncate_run(run: SyntheticRun, t_ns: int) -> tuple[list[RequestRecord], RunTimeline]:
    """The run as the client saw it at time t_ns (an interim look while load is still full).

    Requests not yet sent are left out; requests not finished are returned in flight (not
    successful, no error kind, only the token events seen so far). The steady window of the
    returned timeline ends at t_ns.
    """
    out: list[RequestRecord] = []
    for r in run.records:
        if r.t_send > t_ns:
            continue
        if r.t_last_token is not None and r.t_last_token <= t_ns:
            out.append(r)
            continue
        k = int(np.searchsorted(np.asarray(r.event_times), t_ns, side="right"))
        out.append(RequestRecord(
            index=r.index, request_id=r.request_id, api=r.api, input_len=r.input_len,
            max_tokens=r.max_tokens, forced=r.forced, t_queued=r.t_queued, t_send=r.t_send,
            t_headers=r.t_headers, t_first_token=r.event_times[0] if k else None,
            t_first_answer=r.event_times[0] if k else None,
            t_last_token=r.event_times[k - 1] if k else None,
            event_times=r.event_times[:k], event_tokens=r.event_tokens[:k],
            event_reasoning=r.event_reasoning[:k], status=r.status))
    tl = run.timeline
    timeline = RunTimeline(mode=tl.mode, t_start=tl.t_start, t_load_reached=tl.t_load_reached,
                           t_drain_start=t_ns, t_end=t_ns,
                           target_concurrency=tl.target_concurrency,
                           peak_concurrency=tl.peak_concurrency)
    return out, timeline
