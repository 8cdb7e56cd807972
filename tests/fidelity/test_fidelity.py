"""Fidelity plumbing: the client's TTFT, TPOT and throughput follow what the simulator emitted.

The simulator logs the perf_counter_ns of every chunk right before writing it; client and server
share CLOCK_MONOTONIC on this machine. These tests hold on a busy machine (another process
spinning on one core): they check that every request is matched and counted, that no token is
seen before it was written, and that the errors are far below what a plumbing fault produces:
- a stream read to its end before its tokens are stamped puts the TTFT error near the stream's
  length (320 ms or more in every regime here) and the TPOT error near minus one step;
- multi-token chunks counted as one token, or tokens counted twice, miss the throughput by 50% or
  more.
The millisecond figures and their goals are printed by `benchmarks/fidelity.py`.
"""

from __future__ import annotations

import pytest

from pytest_deepseek.testing.fidelity import FidelityReport, SimMeasurement, measure_against_sim

THROUGHPUT_PCT = 5.0  # |throughput error|; faults above miss by 50% or more
TTFT_P50_MS = 100.0  # TTFT p50 error in 0..this; a buffered stream is >= 320 ms late
TPOT_FRACTION = 0.2  # |mean TPOT error| within this fraction of the true time per token


def measure(tmp_path, url, *, concurrency, prompts, output_len, mode="closed", rate=None) -> FidelityReport:
    measured: SimMeasurement = measure_against_sim(url, tmp_path, concurrency=concurrency, prompts=prompts,
                                                   output_len=output_len, mode=mode, rate=rate)
    report, records = measured.report, measured.load.records
    assert report.unmatched == 0 and report.requests == prompts
    assert all(r.success for r in records)
    assert sum(r.completion_tokens for r in records) == sum(t.completion_tokens for t in measured.truth.values())
    return report


def assert_close(report: FidelityReport, *, token_ms: float) -> None:
    """`token_ms`: the simulator's time per output token (decode step / tokens per step)."""
    assert abs(report.throughput_error_pct) <= THROUGHPUT_PCT, report
    assert 0 <= report.ttft_error_ms_p50 <= TTFT_P50_MS, report  # never before the server wrote it
    assert abs(report.tpot_error_ms_mean) <= TPOT_FRACTION * token_ms, report


def test_low_load(tmp_path):
    report = measure(tmp_path, "sim://deepseek-v3?step_base_ms=20&step_per_seq_ms=0", concurrency=2,
                     prompts=12, output_len=64)
    assert_close(report, token_ms=20)


def test_high_load(tmp_path):
    report = measure(tmp_path, "sim://fast?step_base_ms=5&step_per_seq_ms=0", concurrency=48,
                     prompts=240, output_len=128)
    assert report.true_throughput > 2000, report  # the regime: thousands of single-token chunks per second
    assert_close(report, token_ms=5)


def test_open_loop(tmp_path):
    report = measure(tmp_path, "sim://deepseek-v3?step_base_ms=10", concurrency=64, prompts=80, output_len=32,
                     mode="open", rate=40.0)
    assert_close(report, token_ms=10)


@pytest.mark.parametrize("tokens_per_step", [2, 4])
def test_multi_token_chunks(tmp_path, tokens_per_step):
    url = f"sim://deepseek-v3-mtp?step_base_ms=10&tokens_per_step={tokens_per_step}"
    report = measure(tmp_path, url, concurrency=4, prompts=16, output_len=64)
    assert_close(report, token_ms=10 / tokens_per_step)
