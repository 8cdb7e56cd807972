"""One serving scenario as the result file of `vllm bench serve --save-result --save-detailed`.

Format followed: `vllm/benchmarks/serve.py` of vllm-project/vllm at commit 009e6d4a1cd6 (2026 main),
as written by `vllm bench serve --save-result --save-detailed --percentile-metrics ttft,tpot,itl,e2el
--metric-percentiles 50,90,95,99`. Its keys are those of every `vllm bench serve` since 0.10.2
(`failed`, `max_output_tokens_per_s`, `max_concurrent_requests`; the peak figures came with vLLM
pull request 23867) plus the later `rtfx`, `start_times` (pull request 32667), `latencies` and
`queue_times`: a reader of an older file finds every key it knows. Four `--metadata` style string
keys say where the figures come from: `profile`, `scenario`, `verdict` and `simulated` (figures
measured against the simulator are labelled so wherever they go).

Units as vLLM writes them: `duration` and the per-request lists `ttfts`, `itls`, `latencies`,
`start_times`, `queue_times` in seconds; every `*_ms` key in milliseconds; throughputs per second.

What each key holds. The figures are the run's decided figures (`RunMetrics` of
`serving.journal.decide`); where vLLM defines a key differently from METRICS.md, the key holds the
figure matching vLLM's definition:
- `duration`: our run window (first measured send to last token event), vLLM's benchmark duration;
- `completed`, `failed`: our completed and failed measured requests (warmup excluded);
- `total_input_tokens`, `total_output_tokens`: prompt tokens (usage, else the target length) and
  output tokens N of the completed requests;
- `request_throughput`, `output_throughput`, `total_token_throughput`, `request_goodput`: over the
  whole run window, as vLLM computes them (our gate figures use the steady-state window instead);
  `output_throughput` is our `output_throughput_run_window`; `request_goodput` counts the requests
  meeting every SLO of the scenario's `slo:` (null without one, as vLLM without `--goodput`);
- `max_output_tokens_per_s`: the most output tokens in one 1 s bucket counted from the run start,
  tokens attributed to token events as everywhere else; `max_concurrent_requests`: our peak
  concurrency; `rtfx`: 0.0 (no audio input);
- `ttft`, `tpot`, `e2el`: our TTFT, TPOT ((E2E - TTFT) / (N - n1), vLLM's TPOT) and E2E of the
  completed requests; `itl`: our chunk gaps (vLLM's ITL is the gap between streamed chunks),
  pooled. Mean, median and percentiles are our figures (linear interpolation, as numpy's default
  that vLLM uses); `std` is the population standard deviation of the same samples (numpy's
  default). A latency without samples is 0.0, as vLLM writes it;
- per-request lists, one entry per measured request in prompt-set order: `input_lens` (prompt
  tokens), `output_lens` (N, 0 for a request that did not complete), `ttfts` (0.0 before a first
  token), `itls` (the gaps between the request's token events), `latencies` (E2E, 0.0 unless
  completed), `start_times` (the send time on the client's perf_counter clock), `queue_times` (time
  waiting for a concurrency slot), `generated_texts` (reasoning then answer text), `errors` (""
  for a completed request, else its error, or that it was still in flight when an early stop
  ended the run);
- load shape: a closed loop of C clients is vLLM's `request_rate: "inf"` with `max_concurrency: C`,
  a latency batch of B requests likewise with B; an open loop gives its rate (`"inf"` when
  unbounded) and its cap; `burstiness` is the gamma shape, 1.0 for Poisson arrivals and `"inf"` for
  constant ones (vLLM's infinite burstiness, which vLLM itself writes as the non-standard JSON
  `Infinity`: these files are strict JSON, so it is written the way vLLM writes an infinite rate).

Pure computation: no I/O.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..serving.journal import ScenarioStart
from ..serving.metrics import (
    LatencySummary,
    RunMetrics,
    _prompt_tokens,
    first_token_ns,
    last_token_ns,
    throughput_buckets,
)
from ..serving.records import RequestRecord
from ..verdict import GateResult

# vLLM's name of each latency -> ours.
LATENCIES = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "chunk_gap_ms", "e2el": "e2e_ms"}
PERCENTILES = (50, 90, 95, 99)
# The per-request lists (`--save-detailed`), in the order vLLM writes them.
DETAILED_KEYS = ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times", "queue_times",
                 "generated_texts", "errors")
# `--metadata` style keys saying where the figures come from.
METADATA_KEYS = ("profile", "scenario", "verdict", "simulated")
BACKENDS = {"completions": "openai", "chat": "openai-chat"}  # vLLM's backend name of each API
DATE_FORMAT = "%Y%m%d-%H%M%S"
INFINITE = "inf"
PEAK_BUCKET_S = 1.0
UNFINISHED = "not finished when the run stopped"  # the error of a request still in flight at an early stop

_S = 1e9


def latency_keys() -> list[str]:
    """`mean_ttft_ms`, `median_ttft_ms`, `std_ttft_ms`, `p50_ttft_ms`, ... in vLLM's order."""
    return [f"{stat}_{name}_ms" for name in LATENCIES
            for stat in ("mean", "median", "std", *(f"p{p}" for p in PERCENTILES))]


def vllm_document(start: ScenarioStart, records: Sequence[RequestRecord], metrics: RunMetrics,
                  result: GateResult) -> dict[str, Any]:
    """The vLLM result document of one scenario: its start line, its records and its decided
    figures and result (see the module docstring for what each key holds)."""
    measured = sorted((r for r in records if not r.warmup), key=lambda r: r.index)
    document = {**_setup(start, result), **_totals(measured, metrics), **_detailed(measured),
                "max_output_tokens_per_s": _peak_output_rate(records, metrics),
                "max_concurrent_requests": int(metrics.peak_concurrency), "rtfx": 0.0}
    for name, ours in LATENCIES.items():
        document.update(_latency_stats(name, getattr(metrics, ours), metrics.samples.get(ours)))
    return document


def _setup(start: ScenarioStart, result: GateResult) -> dict[str, Any]:
    """What vLLM writes before the figures: date, backend, model, size, metadata and load shape."""
    scenario, target = start.scenario, start.target
    backend = BACKENDS.get(target.api, "openai")
    setup: dict[str, Any] = {
        "date": _dt.datetime.fromtimestamp(start.at).strftime(DATE_FORMAT),
        "endpoint_type": backend,
        "backend": backend,
        "label": f"{start.profile}:{start.case_id}",
        "model_id": target.model,
        "tokenizer_id": str(start.fingerprint.get("tokenizer") or target.model),
        "num_prompts": int(start.planned),
        "profile": start.profile,
        "scenario": start.case_id,
        "verdict": result.verdict,
        "simulated": "true" if target.simulated else "false",
    }
    if scenario.mode == "open":
        rate: float | str = float(scenario.request_rate or math.inf)
        cap = scenario.max_concurrency
    else:
        rate, cap = math.inf, scenario.batch_size if scenario.mode == "batch" else (scenario.concurrency or 1)
    setup["request_rate"] = INFINITE if math.isinf(rate) else rate
    setup["burstiness"] = _burstiness(scenario.arrival, scenario.burstiness) if scenario.mode == "open" else 1.0
    setup["max_concurrency"] = cap
    return setup


def _burstiness(arrival: str, shape: float) -> float | str:
    if arrival == "constant":
        return INFINITE
    return float(shape) if arrival == "gamma" else 1.0


def _totals(measured: Sequence[RequestRecord], metrics: RunMetrics) -> dict[str, Any]:
    """Counts and whole-run-window throughputs."""
    completed = [r for r in measured if r.success]
    total_input = sum(_prompt_tokens(r) for r in completed)
    total_output = sum(r.n_tokens for r in completed)
    duration = metrics.run_window_s or 0.0

    def rate(amount: float) -> float:
        return amount / duration if duration else 0.0

    return {
        "duration": duration,
        "completed": metrics.completed,
        "failed": metrics.failed,
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "request_throughput": rate(metrics.completed),
        "request_goodput": rate(metrics.good) if metrics.slo else None,
        "output_throughput": metrics.output_throughput_run_window or 0.0,
        "total_token_throughput": rate(total_input + total_output),
    }


def _detailed(measured: Sequence[RequestRecord]) -> dict[str, list[Any]]:
    """The per-request lists, one entry per measured request."""
    def seconds(t_ns: int | None, since_ns: int) -> float:
        return 0.0 if t_ns is None or not since_ns else (t_ns - since_ns) / _S

    return {
        "input_lens": [_prompt_tokens(r) for r in measured],
        "output_lens": [r.n_tokens if r.success else 0 for r in measured],
        "ttfts": [seconds(first_token_ns(r), r.t_send) for r in measured],
        "itls": [[float(g) / _S for g in np.diff(np.asarray(r.event_times, dtype=np.int64))] for r in measured],
        "latencies": [seconds(last_token_ns(r), r.t_send) if r.success else 0.0 for r in measured],
        "start_times": [r.t_send / _S for r in measured],
        "queue_times": [r.queue_wait_ns / _S for r in measured],
        "generated_texts": [r.reasoning_text + r.text for r in measured],
        "errors": ["" if r.success else (r.error_detail or r.error_kind or UNFINISHED) for r in measured],
    }


def _peak_output_rate(records: Sequence[RequestRecord], metrics: RunMetrics) -> float:
    """The most output tokens in one 1 s bucket from the run start (the last bucket may be partial)."""
    start, end = metrics.run_start_ns, metrics.run_end_ns
    if start is None or end is None:
        return 0.0
    width = int(PEAK_BUCKET_S * _S)
    last = start + width * max(1, math.ceil((end - start) / width))
    buckets = throughput_buckets([r for r in records if not r.warmup], start, last, PEAK_BUCKET_S)
    return float(buckets.max()) if buckets.size else 0.0


def _latency_stats(name: str, summary: LatencySummary, samples_ms: np.ndarray | None) -> dict[str, float]:
    """mean, median, std and percentiles of one latency, 0.0 where there is no sample."""
    x = np.asarray(samples_ms if samples_ms is not None else (), dtype=float)
    x = x[np.isfinite(x)]
    values = {"mean": summary.mean, "median": summary.p50, "std": float(np.std(x)) if x.size else None}
    values.update({f"p{p}": getattr(summary, f"p{p}") for p in PERCENTILES})
    return {f"{stat}_{name}_ms": float(v) if v is not None else 0.0 for stat, v in values.items()}
