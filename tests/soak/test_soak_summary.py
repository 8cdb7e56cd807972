"""The soak's pure parts: interval figures that count every token once, the record memory estimate,
windows, drift and RSS growth."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import numpy as np
import pytest

from pytest_deepseek.serving.held import record_bytes
from pytest_deepseek.serving.metrics import compute_run_metrics, tokens_in_window
from pytest_deepseek.serving.records import RequestRecord
from pytest_deepseek.sim.urls import parse_sim_url
from pytest_deepseek.testing.soak import (
    DEFAULT_SIM_URL,
    Interval,
    SoakConfig,
    drift_pct,
    interval_metrics_input,
    percentile_interval,
    pooled,
    request_budget,
    summarize,
)
from pytest_deepseek.testing.synthetic import generate_run, truncate_run


def interval(k: int, *, rss: float = 100.0, held: float = 0.0, held_records: int = 0, tok_s: float = 1000.0,
             ttft: float = 10.0, tpot: float = 5.0, seconds: float = 10.0) -> Interval:
    return Interval(start_s=k * seconds, end_s=(k + 1) * seconds, rss_mb=rss, server_rss_mb=None, cpu_cores=0.1,
                    server_cpu_cores=None, completed=20, failed=0, output_tok_s=tok_s, ttft_p50_ms=ttft,
                    ttft_p99_ms=ttft, tpot_p50_ms=tpot, held_records=held_records, held_mb=held, gc_max_ms=0.0,
                    gc_full=0, ttft_samples=np.full(20, ttft), tpot_samples=np.full(20, tpot))


def test_intervals_count_every_token_once():
    run = generate_run(5000.0, seed=3, concurrency=25, num_prompts=1500, mean_output_len=64)
    start = run.timeline.t_load_reached
    assert start is not None
    edges = [start + k * 1_500_000_000 for k in range(8)]
    counted = 0.0
    completed = 0
    for a, b in zip(edges, edges[1:]):
        seen_at_b, _ = truncate_run(run, b)
        finished = [r for r in seen_at_b if r.success and a < r.t_last_token <= b]
        in_flight = [r for r in seen_at_b if not r.success]
        metrics = compute_run_metrics(*interval_metrics_input(finished, in_flight, a, b))
        assert metrics.window_used == "steady" and metrics.window_s == pytest.approx((b - a) / 1e9)
        counted += metrics.output_throughput * metrics.window_s
        completed += metrics.completed
        assert metrics.ttft_ms.p50 is not None and metrics.tpot_ms.p50 is not None
    assert counted == pytest.approx(tokens_in_window(run.records, edges[0], edges[-1]), rel=1e-9)
    assert completed == sum(1 for r in run.records if edges[0] < r.t_last_token <= edges[-1])


def client_like_record(index: int, tokens: int) -> RequestRecord:
    """A record filled the way the streaming client fills one."""
    record = RequestRecord(index=index, request_id=f"soak-{index}", api="completions", max_tokens=tokens,
                           forced=True, t_queued=time.perf_counter_ns(), t_send=time.perf_counter_ns(),
                           t_headers=time.perf_counter_ns())
    text = ""
    for _ in range(tokens):
        record.event_times.append(time.perf_counter_ns())
        record.event_tokens.append(1)
        record.event_reasoning.append(False)
        text += " word"
    record.text = text
    record.finish_reason = "".join(["len", "gth"])
    record.completion_tokens, record.prompt_tokens = tokens, 256
    record.t_first_token, record.t_last_token = record.event_times[0], record.event_times[-1]
    record.t_end = time.perf_counter_ns()
    record.success = True
    return record


def test_record_bytes_matches_what_the_records_take():
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        records = [client_like_record(i, 128) for i in range(300)]
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    estimate = sum(record_bytes(r) for r in records)
    assert 0.8 * taken <= estimate <= 1.2 * taken, (estimate, taken)
    assert record_bytes(client_like_record(0, 256)) > record_bytes(client_like_record(0, 128))


def test_pooled_figures_weigh_intervals_by_time_and_pool_latencies():
    a = interval(0, tok_s=1000.0, ttft=10.0)
    b = interval(1, tok_s=3000.0, ttft=30.0)
    figures = pooled([a, b])
    assert figures.seconds == pytest.approx(20.0)
    assert figures.output_tok_s == pytest.approx(2000.0)
    assert figures.ttft_p50_ms == pytest.approx(20.0)  # the median of 20 tens and 20 thirties
    assert drift_pct(pooled([a]), pooled([b]))["output_tok_s"] == pytest.approx(200.0)
    # 0.1 core for 20 s over 40,000 tokens; no simulator figure when it was not sampled
    assert figures.client_us_per_token == pytest.approx(0.1 * 20 / 40_000 * 1e6)
    assert figures.server_us_per_token is None
    sampled = pooled([dataclasses.replace(a, server_cpu_cores=0.2), dataclasses.replace(b, server_cpu_cores=0.4)])
    assert sampled.server_us_per_token == pytest.approx((0.2 * 10 + 0.4 * 10) / 40_000 * 1e6)


def test_summary_counts_rss_from_the_warmup_and_compares_windows_after_it():
    config = SoakConfig(duration_s=100, interval_s=10, warmup_s=20)
    assert config.window_intervals == 2  # a third of the 80 s after the warm-up, in whole intervals
    intervals = [interval(k, rss=100.0 + k, held=0.5 * k, held_records=10 * k, tok_s=5000.0 if k else 100.0)
                 for k in range(10)]
    summary = summarize(intervals, config)
    assert (summary.rss_base_s, summary.rss_base_mb) == (20.0, 101.0)  # the first sample at or after 20 s
    assert summary.rss_growth_mb == pytest.approx(8.0)
    assert summary.held_growth_mb == pytest.approx(4.0) and summary.held_growth_records == 80
    assert summary.unexplained_growth_mb == pytest.approx(4.0)
    assert summary.per_hour(summary.rss_growth_mb) == pytest.approx(8.0 / 80 * 3600)
    assert not summary.rss_ok and not summary.no_leak
    assert summary.first.seconds == pytest.approx(20.0) and summary.last.seconds == pytest.approx(20.0)
    assert summary.drift_pct["output_tok_s"] == pytest.approx(0.0)  # the slow first interval is warm-up
    assert all(summary.drift_ok(name) for name in summary.drift_pct)


def test_drift_beyond_the_target_fails():
    config = SoakConfig(duration_s=90, interval_s=10, warmup_s=10)
    intervals = [interval(k, tok_s=5000.0 if k < 6 else 4900.0) for k in range(9)]
    summary = summarize(intervals, config)
    assert summary.drift_pct["output_tok_s"] == pytest.approx(-2.0)
    assert not summary.drift_ok("output_tok_s") and not summary.passed


def test_the_plan_outlasts_the_duration():
    config = SoakConfig(duration_s=600)
    sim = parse_sim_url(DEFAULT_SIM_URL)
    fastest_s = config.shortest_output * sim.step_base_ms / 1000
    assert request_budget(config, sim) >= config.concurrency * config.duration_s / fastest_s


def test_output_lengths_spread_around_the_mean():
    config = SoakConfig(output_len=128, output_spread=0.5)
    lengths = config.output_lengths(2000)
    assert min(lengths) == config.shortest_output == 64 and max(lengths) == 192
    assert abs(sum(lengths) / len(lengths) - 128) < 3
    assert config.output_lengths(10) == lengths[:10]  # seeded
    assert set(SoakConfig(output_len=64, output_spread=0).output_lengths(5)) == {64}


@pytest.mark.parametrize("kwargs", [{"duration_s": 20, "interval_s": 10}, {"duration_s": 60, "warmup_s": 60},
                                    {"output_spread": 1.0}])
def test_config_rejects_runs_too_short_to_judge(kwargs):
    with pytest.raises(ValueError):
        SoakConfig(**kwargs)


def test_a_windows_p99_interval_comes_from_order_statistics():
    samples = np.arange(1.0, 10_001.0)  # the p99 is 9,900; about 10 ranks each side at 97.5%
    low, high = percentile_interval(samples, 0.99)
    assert 9_870 < low < 9_900 < high < 9_930
    assert percentile_interval(np.arange(1.0, 51.0), 0.99) is None  # too few for an upper bound
    figures = pooled([interval(0), interval(1)])  # 40 samples: no interval
    assert figures.ttft_p99_interval_ms is None
