"""Compare what the client measured with what a server says it emitted (the simulator's truth log).

`compare` is pure: it takes the client's request records and the server's per-request emit times
(same clock: CLOCK_MONOTONIC on one machine) and reports the measurement errors. `measure_against_sim`
runs a load against a simulator it starts and compares; the fidelity tests check its plumbing and
`benchmarks/fidelity.py` prints its figures beside their goals.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..run_async import run_async
from ..serving.client import make_http_client, send_request
from ..serving.load import LoadResult, LoadRunner, LoadShape
from ..serving.metrics import compute_run_metrics, tpot_ms
from ..serving.records import RequestRecord, RequestSpec
from ..sim.launcher import start_sim
from ..sim.truth import TruthRecord, read_truth


class EmitLog(Protocol):
    """What the server logged for one request."""

    first_emit_ns: int | None
    emit_ns: list[int]
    emit_tokens: list[int]


@dataclass(frozen=True)
class FidelityReport:
    """Measurement errors of one run (measured − true)."""

    requests: int
    true_tokens_in_window: int
    true_throughput: float  # tokens emitted in the window / window length (server clock)
    throughput_error_pct: float | None  # of the client's window throughput vs the true one
    ttft_error_ms_p50: float | None  # client first token − server first write
    ttft_error_ms_max: float | None
    tpot_error_ms_mean: float | None  # client TPOT − TPOT from the server's write times
    tpot_error_ms_max_abs: float | None
    unmatched: int  # client records with no truth record


def _tpot_ms(times: Sequence[int], tokens: Sequence[int]) -> float | None:
    n = sum(tokens)
    if len(times) < 2 or not tokens or n <= tokens[0]:
        return None
    return (times[-1] - times[0]) / (n - tokens[0]) / 1e6


def compare(
    records: Sequence[RequestRecord],
    truth: Mapping[str, EmitLog],
    *,
    window: tuple[int, int],
    measured_throughput: float | None,
) -> FidelityReport:
    """Errors of the client's figures against the server's emit log over `window` (ns)."""
    start, end = window
    true_tokens = 0
    ttft_errors: list[float] = []
    tpot_errors: list[float] = []
    unmatched = 0
    counted = 0
    for record in records:
        if record.warmup:
            continue
        log = truth.get(record.request_id)
        if log is None:
            unmatched += 1
            continue
        counted += 1
        true_tokens += sum(n for t, n in zip(log.emit_ns, log.emit_tokens) if start <= t <= end)
        if record.success and record.t_first_token is not None and log.first_emit_ns is not None:
            ttft_errors.append((record.t_first_token - log.first_emit_ns) / 1e6)
        measured = tpot_ms(record) if record.success else None
        true = _tpot_ms(log.emit_ns, log.emit_tokens)
        if measured is not None and true is not None:
            tpot_errors.append(measured - true)
    seconds = (end - start) / 1e9
    true_throughput = true_tokens / seconds if seconds > 0 else 0.0
    error_pct = None
    if measured_throughput is not None and true_throughput > 0:
        error_pct = 100.0 * (measured_throughput - true_throughput) / true_throughput
    return FidelityReport(
        requests=counted,
        true_tokens_in_window=true_tokens,
        true_throughput=true_throughput,
        throughput_error_pct=error_pct,
        ttft_error_ms_p50=statistics.median(ttft_errors) if ttft_errors else None,
        ttft_error_ms_max=max(ttft_errors) if ttft_errors else None,
        tpot_error_ms_mean=statistics.fmean(tpot_errors) if tpot_errors else None,
        tpot_error_ms_max_abs=max(abs(e) for e in tpot_errors) if tpot_errors else None,
        unmatched=unmatched,
    )


@dataclass(frozen=True)
class SimMeasurement:
    """One load run against the simulator: what the client saw, what the server logged, the errors."""

    load: LoadResult
    truth: Mapping[str, TruthRecord]
    report: FidelityReport


async def _run_load(base_url: str, model: str, shape: LoadShape, prompts: int, output_len: int,
                    pool: int) -> LoadResult:
    specs = [RequestSpec(index=i, api="completions", model=model, prompt="hello " * 32, max_tokens=output_len)
             for i in range(prompts)]
    async with make_http_client(base_url, concurrency=pool, api_key=None, timeout_s=60) as http:
        async def send(spec: RequestSpec, t_queued: int, on_start: Callable[[RequestRecord], None]) -> RequestRecord:
            return await send_request(http, spec, request_id=f"f-{spec.index}", t_queued=t_queued, on_start=on_start)

        return await LoadRunner(send, shape).run([], specs)


def measure_against_sim(url: str, folder: Path, *, concurrency: int, prompts: int, output_len: int,
                        mode: str = "closed", rate: float | None = None) -> SimMeasurement:
    """Start the simulator at `url`, send `prompts` requests (closed loop with `concurrency`
    clients, or open loop at `rate` with a pool of `concurrency` connections), and compare the
    client's steady-state figures with the simulator's emit log."""
    truth_path = folder / "truth.jsonl"
    shape = LoadShape(mode=mode, concurrency=concurrency if mode == "closed" else None, request_rate=rate)
    with start_sim(url, truth_path=truth_path, log_path=folder / "sim.log") as sim:
        load = run_async(_run_load(sim.base_url, sim.model, shape, prompts, output_len, concurrency))
    truth = read_truth(truth_path)
    metrics = compute_run_metrics(load.records, load.timeline)
    if metrics.window_start_ns is None or metrics.window_end_ns is None:
        raise RuntimeError(f"no measurement window: {metrics.completed} completed, {metrics.failed} failed")
    report = compare(load.records, truth, window=(metrics.window_start_ns, metrics.window_end_ns),
                     measured_throughput=metrics.output_throughput)
    return SimMeasurement(load, truth, report)
