"""Compare what the client measured with what a server says it emitted (the simulator's truth log).

Pure: takes the client's request records and the server's per-request emit times (same clock:
CLOCK_MONOTONIC on one machine) and reports the measurement errors the fidelity tests and the
client-capacity benchmark bound.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .metrics import tpot_ms
from .records import RequestRecord


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
