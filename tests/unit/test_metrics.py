"""Serving metrics on hand-built records with known timestamps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_deepseek.serving.metric_names import THROUGHPUT_BASES, base_metric, throughput_names
from pytest_deepseek.serving.metrics import (
    bucket_series,
    compute_run_metrics,
    event_token_weights,
    metric_names,
    throughput_buckets,
)
from pytest_deepseek.serving.records import RequestRecord, RunTimeline
from pytest_deepseek.testing.synthetic import generate_run, truncate_run

BASE = 10_000_000_000  # perf_counter_ns origin of the hand-built runs
MS = 1_000_000


def ns(ms: float) -> int:
    return BASE + int(round(ms * MS))


def rec(index: int, send_ms: float, events: list[tuple[float, int]], *, n: int | None = None,
        prompt: int | None = 100, success: bool = True, error: str | None = None,
        warmup: bool = False, answer_ms: float | None = None, end_ms: float | None = None
        ) -> RequestRecord:
    """A record; events are (arrival ms, tokens). n defaults to the sum of event tokens."""
    times = [ns(t) for t, _ in events]
    toks = [k for _, k in events]
    first = times[0] if times else None
    return RequestRecord(
        index=index, request_id=f"r{index}", api="completions", warmup=warmup, input_len=100,
        max_tokens=n or sum(toks), t_queued=ns(send_ms), t_send=ns(send_ms),
        t_first_token=first,
        t_first_answer=ns(answer_ms) if answer_ms is not None else first,
        t_last_token=times[-1] if times else None,
        t_end=ns(end_ms) if end_ms is not None else (times[-1] if times else None),
        event_times=times, event_tokens=toks, event_reasoning=[False] * len(times),
        prompt_tokens=prompt if success else None,
        completion_tokens=(n if n is not None else sum(toks)) if success else None,
        success=success, error_kind=error, status=200 if success else None,
        done_seen=success, finish_reason="length" if success else None)


def three_requests() -> list[RequestRecord]:
    return [
        # A: 1 token per event. TTFT 100, E2E 160, TPOT (160-100)/(4-1) = 20.
        rec(0, 0, [(100, 1), (120, 1), (140, 1), (160, 1)], prompt=5),
        # B: MTP chunks of 2 tokens. TTFT 200, E2E 280, TPOT (330-250)/(6-2) = 20.
        rec(1, 50, [(250, 2), (290, 2), (330, 2)], prompt=6),
        # C: TTFT 130, E2E 160, TPOT 30/1 = 30.
        rec(2, 150, [(280, 1), (310, 1)], prompt=7),
    ]


def timeline(load_ms: float | None = 130, drain_ms: float | None = 300, peak: int = 3
             ) -> RunTimeline:
    return RunTimeline(mode="closed", t_start=ns(0),
                       t_load_reached=None if load_ms is None else ns(load_ms),
                       t_drain_start=None if drain_ms is None else ns(drain_ms),
                       t_end=ns(330), target_concurrency=3, peak_concurrency=peak)


def test_per_request_latencies_and_percentiles() -> None:
    m = compute_run_metrics(three_requests(), timeline())
    assert m.samples["ttft_ms"].tolist() == [100.0, 200.0, 130.0]
    assert m.samples["e2e_ms"].tolist() == [160.0, 280.0, 160.0]
    assert m.samples["tpot_ms"].tolist() == pytest.approx([20.0, 20.0, 30.0])
    # Linear interpolation between order statistics 100, 130, 200.
    assert m.ttft_ms.p50 == pytest.approx(130.0)
    assert m.ttft_ms.p90 == pytest.approx(130.0 + 0.8 * 70.0)
    assert m.ttft_ms.p99 == pytest.approx(130.0 + 0.98 * 70.0)
    assert m.ttft_ms.mean == pytest.approx(430.0 / 3)
    # Chunk gaps pooled, with the tokens of the chunk that closes each gap.
    assert sorted(m.samples["chunk_gap_ms"].tolist()) == pytest.approx([20, 20, 20, 30, 40, 40])
    assert sorted(m.samples["chunk_tokens"].tolist()) == [1, 1, 1, 1, 2, 2]
    assert m.tokens_per_chunk_mean == pytest.approx(12 / 9)


def test_steady_window_counts_edge_requests_partially() -> None:
    m = compute_run_metrics(three_requests(), timeline(130, 300))
    assert m.window_used == "steady"
    assert m.window_s == pytest.approx(0.170)
    # In [130, 300]: A's events at 140 and 160 (2), B's at 250 and 290 (2 + 2), C's at 280 (1).
    assert m.output_throughput == pytest.approx(7 / 0.170)
    # Run window 0 -> 330 ms with sum N = 4 + 6 + 2.
    assert m.run_window_s == pytest.approx(0.330)
    assert m.output_throughput_run_window == pytest.approx(12 / 0.330)
    # Only C was sent inside the window (its 7 prompt tokens).
    assert m.input_throughput == pytest.approx(7 / 0.170)
    assert m.total_token_throughput == pytest.approx(14 / 0.170)
    # Only A finished inside the window.
    assert m.request_throughput == pytest.approx(1 / 0.170)
    # Active time inside the window: A 30 ms, B 170 ms, C 150 ms.
    assert m.achieved_concurrency == pytest.approx(350 / 170)
    assert m.peak_concurrency == 3


@pytest.mark.parametrize(("load", "drain"), [(None, 300), (130, None), (300, 300), (300, 130)])
def test_missing_or_degenerate_steady_window_falls_back_to_run(load, drain) -> None:
    m = compute_run_metrics(three_requests(), timeline(load, drain))
    assert m.window_used == "run"
    assert m.window_s == pytest.approx(0.330)
    assert m.output_throughput == pytest.approx(m.output_throughput_run_window)
    assert m.input_throughput == pytest.approx(18 / 0.330)
    assert m.achieved_concurrency == pytest.approx(600 / 330)


def test_usage_larger_than_event_count_is_spread_over_events() -> None:
    # The server merged 10 tokens into 5 chunks without per-chunk usage: the client counted 1 each.
    r = rec(0, 0, [(100, 1), (110, 1), (120, 1), (130, 1), (140, 1)], n=10)
    assert event_token_weights(r).tolist() == [2.0] * 5
    m = compute_run_metrics([r], timeline(105, 125))
    assert m.output_throughput == pytest.approx(4 / 0.020)  # events at 110 and 120: 2 + 2
    assert m.samples["tpot_ms"].tolist() == pytest.approx([40 / 9])  # n1 = 1 (first event)
    assert m.tokens_per_chunk_mean == pytest.approx(2.0)
    # Proportional spread keeps the MTP shape and still sums to N.
    w = event_token_weights(rec(1, 0, [(10, 2), (20, 1), (30, 1)], n=6))
    assert w.tolist() == pytest.approx([3.0, 1.5, 1.5]) and w.sum() == pytest.approx(6.0)


def test_tpot_undefined_when_n_not_above_first_chunk() -> None:
    m = compute_run_metrics([rec(0, 0, [(50, 2)]), rec(1, 0, [(40, 1), (60, 1)])],
                            timeline(None, None))
    assert m.samples["tpot_ms"].tolist() == [20.0]


def test_warmup_excluded_everywhere() -> None:
    recs = three_requests() + [rec(9, -500, [(-400, 50), (200, 50)], prompt=999, warmup=True)]
    m = compute_run_metrics(recs, timeline())
    base = compute_run_metrics(three_requests(), timeline())
    assert m.to_dict() == base.to_dict()
    assert m.completed == 3 and m.run_window_s == pytest.approx(0.330)


def test_failures_count_against_good_fraction_and_error_rate() -> None:
    recs = three_requests() + [
        rec(3, 60, [(200, 1)], success=False, error="timeout", end_ms=260),
        rec(4, 70, [], success=False, error="http_4xx", end_ms=75),
    ]
    m = compute_run_metrics(recs, timeline(), slo={"ttft_ms": 150})
    assert (m.completed, m.failed) == (3, 2)
    assert m.failed_by_kind == {"timeout": 1, "http_4xx": 1}
    assert m.error_rate == pytest.approx(2 / 5)
    assert m.good == 2  # A (100 ms) and C (130 ms); B's TTFT is 200 ms
    assert m.good_fraction == pytest.approx(2 / 5)
    assert m.goodput == pytest.approx(1 / 0.170)  # only A finished inside the window
    # The failed request's token is not output; its slot time does count as concurrency.
    assert m.output_throughput == pytest.approx(7 / 0.170)
    assert m.achieved_concurrency == pytest.approx((350 + 130) / 170)


def test_slo_on_tpot_and_unknown_slo_key() -> None:
    m = compute_run_metrics(three_requests(), timeline(), slo={"tpot_ms": 25, "e2e_ms": 200})
    assert m.good == 1  # only A: B misses the E2E SLO (280 ms), C the TPOT SLO (30 ms)
    with pytest.raises(ValueError, match="valid keys"):
        compute_run_metrics(three_requests(), timeline(), slo={"ttft": 1})


def test_ttfo_uses_first_answer_token() -> None:
    r = rec(0, 0, [(100, 1), (150, 1), (200, 1)], answer_ms=200)
    m = compute_run_metrics([r], timeline(None, None))
    assert m.ttft_ms.p50 == 100.0 and m.ttfo_ms.p50 == 200.0
    m2 = compute_run_metrics([r], timeline(None, None), slo={"ttfo_ms": 150})
    assert m2.good == 0


def test_in_flight_requests_count_tokens_not_completions() -> None:
    flying = rec(5, 100, [(140, 1), (180, 1)], success=False)
    assert flying.error_kind is None
    m = compute_run_metrics(three_requests() + [flying], timeline())
    assert (m.completed, m.failed) == (3, 0)
    assert m.output_throughput == pytest.approx(9 / 0.170)


def test_to_dict_shape_and_value_lookup() -> None:
    m = compute_run_metrics(three_requests(), timeline(), nodes=2, devices_per_node=8)
    d = m.to_dict()
    json.dumps(d)  # plain JSON types only
    for key in ("output_throughput", "output_throughput_per_node", "output_throughput_per_device",
                "output_throughput_run_window", "input_throughput", "input_throughput_per_node",
                "input_throughput_per_device", "total_token_throughput", "request_throughput",
                "goodput", "good_fraction", "error_rate", "completed", "failed", "failed_by_kind",
                "achieved_concurrency", "peak_concurrency", "window_used", "window_s",
                "tokens_per_chunk_mean"):
        assert key in d
    for lat in ("ttft_ms", "ttfo_ms", "tpot_ms", "e2e_ms", "chunk_gap_ms"):
        assert set(d[lat]) == {"mean", "p50", "p90", "p95", "p99"}
    assert d["output_throughput_per_node"] == pytest.approx(d["output_throughput"] / 2)
    assert m.value("output_throughput_per_device") == pytest.approx(d["output_throughput"] / 16)
    assert m.value("ttft_ms.p99") == d["ttft_ms"]["p99"]
    assert m.value("goodput_per_node") == pytest.approx(m.goodput / 2)
    assert "ttft_ms.p99" in metric_names()
    with pytest.raises(KeyError, match="output_throughput_per_node"):
        m.value("output_tput")


def test_empty_run_gives_none_not_zero() -> None:
    m = compute_run_metrics([rec(0, 0, [], success=False, error="refused")], timeline(None, None))
    d = m.to_dict()
    assert d["window_used"] == "none" and d["output_throughput"] is None
    assert d["ttft_ms"]["p50"] is None and d["error_rate"] == 1.0


def test_peak_concurrency_from_records_when_timeline_lacks_it() -> None:
    m = compute_run_metrics(three_requests(), timeline(peak=0))
    assert m.peak_concurrency == 3


def test_throughput_buckets_whole_buckets_only() -> None:
    b = throughput_buckets(three_requests(), ns(0), ns(330), bucket_s=0.1)
    # [0,100): 0; [100,200): A's 4 tokens; [200,300): B's 250 and 290 (4) + C's 280 (1).
    assert b.tolist() == pytest.approx([0.0, 40.0, 50.0])


def test_bucket_series_keys_and_consistency() -> None:
    run = generate_run(2000.0, seed=5, concurrency=16, num_prompts=600, mean_output_len=32)
    m = compute_run_metrics(run.records, run.timeline)
    s = bucket_series(run.records, m)
    assert set(s) == {"output_throughput", "input_throughput", "total_token_throughput",
                      "request_throughput", "goodput", "output_throughput_run_window"}
    n = s["output_throughput"].size
    assert n == int(m.window_s)
    # The whole-bucket mean differs from the window figure only by the dropped tail.
    assert s["output_throughput"].mean() == pytest.approx(m.output_throughput, rel=0.02)
    assert s["total_token_throughput"] == pytest.approx(
        s["output_throughput"] + s["input_throughput"])


def test_interim_look_sees_same_series_as_full_run_prefix() -> None:
    run = generate_run(2000.0, seed=9, concurrency=16, num_prompts=800, mean_output_len=32)
    t_look = run.timeline.t_load_reached + 4_500_000_000  # 4.5 s into the steady window
    recs, tl = truncate_run(run, t_look)
    assert any(not r.success and r.error_kind is None for r in recs)  # some are in flight
    m_look = compute_run_metrics(recs, tl)
    assert m_look.window_used == "steady"
    look = bucket_series(recs, m_look)["output_throughput"]
    full = throughput_buckets(run.records, run.timeline.t_load_reached, t_look)
    assert look.size == 4 and np.array_equal(look, full)


def test_each_throughput_variant_has_its_whole_deployment_base() -> None:
    assert {base_metric(name) for name in throughput_names()} == set(THROUGHPUT_BASES)
    assert base_metric("goodput_per_node") == "goodput" and base_metric("input_throughput_per_device") == "input_throughput"
    assert base_metric("ttft_ms.p99") == "ttft_ms.p99" and base_metric("error_rate") == "error_rate"
