"""Fidelity: the client's TTFT, TPOT and throughput agree with what the simulator emitted.

The simulator logs the perf_counter_ns of every chunk right before writing it; client and server
share CLOCK_MONOTONIC on this machine. Tolerances (both on a shared 2-core machine):
- low load (2 streams, 20 ms steps): throughput within 1%, TTFT p50 error within 3 ms,
  mean TPOT error within 0.3 ms;
- high load (48 streams, 5 ms steps: up to 9,600 tokens/s as single-token chunks, less when the
  machine is busy): throughput within
  2%, TTFT p50 error within 5 ms, mean TPOT error within 0.5 ms.
"""

from __future__ import annotations

import asyncio

import pytest

from pytest_deepseek.serving.client import make_http_client, send_request
from pytest_deepseek.serving.fidelity import compare
from pytest_deepseek.serving.load import LoadRunner, LoadShape
from pytest_deepseek.serving.metrics import compute_run_metrics
from pytest_deepseek.serving.records import RequestSpec
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.truth import read_truth


def measure(tmp_path, url, *, concurrency, prompts, output_len, mode="closed", rate=None):
    truth_path = tmp_path / "truth.jsonl"
    specs = [RequestSpec(index=i, api="completions", model="deepseek-ai/DeepSeek-V3", prompt="hello " * 32,
                         max_tokens=output_len) for i in range(prompts)]
    with start_sim(url, truth_path=truth_path, log_path=tmp_path / "sim.log") as sim:
        async def go():
            async with make_http_client(sim.base_url, concurrency=concurrency, api_key=None, timeout_s=60) as http:
                async def send(spec, t_queued, on_start):
                    return await send_request(http, spec, request_id=f"f-{spec.index}", t_queued=t_queued,
                                              on_start=on_start)

                shape = LoadShape(mode=mode, concurrency=concurrency if mode == "closed" else None,
                                  request_rate=rate, max_concurrency=None)
                return await LoadRunner(send, shape).run([], specs)

        result = asyncio.run(go())
    truth = read_truth(truth_path)
    metrics = compute_run_metrics(result.records, result.timeline)
    assert metrics.window_start_ns is not None and metrics.window_end_ns is not None
    report = compare(result.records, truth, window=(metrics.window_start_ns, metrics.window_end_ns),
                     measured_throughput=metrics.output_throughput)
    assert report.unmatched == 0 and report.requests == prompts
    assert all(r.success for r in result.records)
    assert sum(r.completion_tokens for r in result.records) == sum(t.completion_tokens for t in truth.values())
    return report


def test_low_load(tmp_path):
    report = measure(tmp_path, "sim://deepseek-v3?step_base_ms=20&step_per_seq_ms=0", concurrency=2,
                     prompts=12, output_len=64)
    assert abs(report.throughput_error_pct) <= 1.0, report
    assert 0 <= report.ttft_error_ms_p50 <= 3.0, report
    assert abs(report.tpot_error_ms_mean) <= 0.3, report


def test_high_load(tmp_path):
    report = measure(tmp_path, "sim://fast?step_base_ms=5&step_per_seq_ms=0", concurrency=48,
                     prompts=240, output_len=128)
    assert report.true_throughput > 4000, report  # the regime: thousands of single-token chunks per second
    assert abs(report.throughput_error_pct) <= 2.0, report
    assert 0 <= report.ttft_error_ms_p50 <= 5.0, report
    assert abs(report.tpot_error_ms_mean) <= 0.5, report


def test_open_loop(tmp_path):
    report = measure(tmp_path, "sim://deepseek-v3?step_base_ms=10", concurrency=64, prompts=80, output_len=32,
                     mode="open", rate=40.0)
    assert abs(report.throughput_error_pct) <= 2.0, report
    assert 0 <= report.ttft_error_ms_p50 <= 3.0, report


@pytest.mark.parametrize("tokens_per_step", [2, 4])
def test_multi_token_chunks(tmp_path, tokens_per_step):
    url = f"sim://deepseek-v3-mtp?step_base_ms=10&tokens_per_step={tokens_per_step}"
    report = measure(tmp_path, url, concurrency=4, prompts=16, output_len=64)
    assert abs(report.throughput_error_pct) <= 1.5, report
    assert abs(report.tpot_error_ms_mean) <= 0.3, report
