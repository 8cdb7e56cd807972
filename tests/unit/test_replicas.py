"""Replicas of one deployment: the router's two policies, who is woken before the measured phase,
the figures of each endpoint, and the endpoint a record went to, kept through records.jsonl."""

from __future__ import annotations

import heapq
import json
import pickle
from collections import Counter

import pytest

from pytest_deepseek.credentials import ApiKey
from pytest_deepseek.serving.journal import ScenarioStart, endpoints_of
from pytest_deepseek.serving.measure import ServingTarget, plan_requests
from pytest_deepseek.serving.records import RequestRecord
from pytest_deepseek.serving.replicas import Router, endpoint_breakdown, wake_targets, warmup_count
from pytest_deepseek.serving.spec import Scenario
from pytest_deepseek.tokenizers import embedded_tokenizer

MS = 1_000_000
BASE = 50_000_000_000


def record(index: int, endpoint: int | None, send_ms: float, ttft_ms: float, tokens: int, *, warmup: bool = False,
           error: str | None = None) -> RequestRecord:
    """A finished record: `tokens` one-token events 10 ms apart after the first at `ttft_ms`."""
    send = BASE + int(send_ms * MS)
    times = [send + int((ttft_ms + 10 * i) * MS) for i in range(tokens)] if error is None else []
    return RequestRecord(
        index=index, request_id=f"r{index}", api="completions", warmup=warmup, input_len=8, max_tokens=tokens,
        t_queued=send, t_send=send, t_first_token=times[0] if times else None,
        t_last_token=times[-1] if times else None, t_end=times[-1] if times else send + 5 * MS,
        event_times=times, event_tokens=[1] * len(times), event_reasoning=[False] * len(times),
        prompt_tokens=8 if error is None else None, completion_tokens=tokens if error is None else None,
        success=error is None, error_kind=error, done_seen=error is None, endpoint=endpoint)


# ---------------------------------------------------------------------------------------------
# Router


def test_round_robin_takes_turns_whatever_is_in_flight() -> None:
    router = Router(3, "round-robin")
    picks = [router.pick() for _ in range(7)]
    assert picks == [0, 1, 2, 0, 1, 2, 0]
    assert router.outstanding == [3, 2, 2]
    router.release(1)
    assert router.pick() == 1  # its turn, not the least loaded


def test_least_outstanding_fills_the_idlest_replica_and_takes_turns_among_equals() -> None:
    router = Router(3, "least-outstanding")
    assert [router.pick() for _ in range(3)] == [0, 1, 2]  # all idle: in turn
    router.release(1)
    assert router.pick() == 1  # the only one with a free slot
    router.release(0)
    router.release(2)
    assert router.pick() == 2  # 0 and 2 tie at zero: the next in turn after 1
    assert router.pick() == 0


def test_release_without_a_request_in_flight_is_a_bug() -> None:
    router = Router(2)
    with pytest.raises(ValueError, match="no request in flight"):
        router.release(0)
    with pytest.raises(ValueError, match="unknown routing"):
        Router(2, "random")
    with pytest.raises(ValueError, match="at least one replica"):
        Router(0)


def closed_loop(policy: str, latencies: list[float], clients: int, requests: int) -> Counter[int]:
    """Requests per replica when `clients` closed-loop clients send `requests` through the router to
    replicas answering in `latencies` time units each (an event simulation, no clock)."""
    router = Router(len(latencies), policy)
    sent: Counter[int] = Counter()
    finishing: list[tuple[float, int, int]] = []  # (time, client, replica)
    for client in range(clients):
        replica = router.pick()
        sent[replica] += 1
        heapq.heappush(finishing, (latencies[replica], client, replica))
    while sum(sent.values()) < requests:
        now, client, replica = heapq.heappop(finishing)
        router.release(replica)
        replica = router.pick()
        sent[replica] += 1
        heapq.heappush(finishing, (now + latencies[replica], client, replica))
    return sent


def test_round_robin_splits_evenly_even_when_one_replica_is_slow() -> None:
    sent = closed_loop("round-robin", [1.0, 8.0], clients=4, requests=101)
    assert abs(sent[0] - sent[1]) <= 1


def test_least_outstanding_sends_most_requests_to_the_fast_replica() -> None:
    sent = closed_loop("least-outstanding", [1.0, 8.0, 1.0], clients=6, requests=300)
    assert sent[0] > 3 * sent[1] and sent[2] > 3 * sent[1]
    assert abs(sent[0] - sent[2]) <= 0.1 * sent[0]  # the two fast ones share alike


# ---------------------------------------------------------------------------------------------
# Waking every endpoint


@pytest.mark.parametrize("warmup, replicas, woken_only, count, wake", [
    (2, 1, 0, 2, ()),  # one URL: as it always was
    (0, 1, 0, 0, ()),
    (0, 3, 0, 3, (0, 1, 2)),  # no warm-up asked: still one per replica
    (1, 3, 0, 4, (0, 1, 2)),  # the scenario's own warm-up on top, through the measured connections
    (5, 3, 0, 8, (0, 1, 2)),
    (0, 1, 2, 2, (1, 2)),  # proxy mode: one per woken URL, the proxy's own warm-up as asked
    (2, 1, 2, 4, (1, 2)),
    (1, 2, 1, 4, (0, 1, 2)),
])
def test_every_endpoint_gets_a_warm_up_request(warmup: int, replicas: int, woken_only: int, count: int,
                                              wake: tuple[int, ...]) -> None:
    assert warmup_count(warmup, replicas, woken_only) == count
    assert wake_targets(replicas, woken_only) == wake
    assert len(wake) <= count


def test_the_plan_has_a_warm_up_request_for_each_url() -> None:
    scenario = Scenario(input_len=16, output_len=4, concurrency=2, num_prompts=5, warmup=1)
    tokenizer = embedded_tokenizer()
    one = plan_requests(scenario, ServingTarget("http://a/v1", "m", "completions"), tokenizer, seed=7)
    three = plan_requests(scenario, ServingTarget("http://a/v1", "m", "completions",
                                                  replicas=("http://a/v1", "http://b/v1", "http://c/v1")),
                          tokenizer, seed=7)
    assert len(one.warmup) == 1 and len(three.warmup) == 3 + 1  # a wake-up per replica, then its own
    assert len(one.measured) == len(three.measured) == 5
    assert all(spec.warmup for spec in three.warmup) and not any(spec.warmup for spec in three.measured)


# ---------------------------------------------------------------------------------------------
# Figures per endpoint


def test_breakdown_counts_each_endpoint_and_shares_the_run_window() -> None:
    records = [
        record(0, 0, 0, 5, 4, warmup=True), record(1, 1, 0, 5, 4, warmup=True), record(2, 2, 0, 5, 4, warmup=True),
        record(3, 0, 100, 20, 10),  # tokens at 120..210 ms
        record(4, 1, 100, 40, 10),  # 140..230
        record(5, 0, 110, 30, 10),  # 140..230
        record(6, 1, 120, 0, 0, error="http_5xx"),
        record(7, 1, 130, 0, 0, error="reset"),
    ]
    urls = ["http://a/v1", "http://b/v1", "http://rank-0/v1"]
    figures = endpoint_breakdown(records, urls, replicas=2)
    assert [f.endpoint for f in figures] == urls and [f.role for f in figures] == ["replica", "replica", "warm-up"]
    a, b, rank = figures
    run_s = (BASE + 230 * MS - (BASE + 100 * MS)) / 1e9  # first measured send -> last token
    assert (a.requests, a.completed, a.failed, a.warmup) == (2, 2, 0, 1)
    assert (b.requests, b.completed, b.failed, b.warmup) == (3, 1, 2, 1)
    assert dict(b.failed_by_kind) == {"http_5xx": 1, "reset": 1}
    assert a.output_throughput_run_window == pytest.approx(20 / run_s) and b.output_throughput_run_window == pytest.approx(10 / run_s)
    assert a.ttft_ms.p50 == pytest.approx(25.0) and a.ttft_ms.p99 == pytest.approx(29.9)
    assert b.ttft_ms.p50 == pytest.approx(40.0)
    assert (rank.requests, rank.warmup, rank.output_throughput_run_window) == (0, 1, None)
    assert json.loads(json.dumps(a.to_json()))["ttft_ms"] == {"p50": a.ttft_ms.p50, "p99": a.ttft_ms.p99}


def test_a_target_of_one_url_has_no_breakdown() -> None:
    records = [record(0, None, 0, 5, 4)]
    assert endpoints_of(ServingTarget("http://a/v1", "m", "completions"), records) == []
    two = ServingTarget("http://u:pw@a/v1", "m", "completions", replicas=("http://u:pw@a/v1", "http://b/v1"))
    assert [f.endpoint for f in endpoints_of(two, records)] == ["http://***@a/v1", "http://b/v1"]


# ---------------------------------------------------------------------------------------------
# What is written down


def test_a_record_keeps_its_endpoint_through_records_jsonl() -> None:
    routed = record(3, 2, 0, 5, 4)
    line = json.loads(json.dumps(routed.to_json_dict()))
    assert line["endpoint"] == 2 and RequestRecord.from_json_dict(line).endpoint == 2
    alone = record(4, None, 0, 5, 4).to_json_dict()
    assert "endpoint" not in alone and RequestRecord.from_json_dict(alone).endpoint is None


def test_the_target_writes_every_url_redacted_and_travels_to_other_processes() -> None:
    target = ServingTarget("http://u:secret@a:8000/v1", "m", "chat", api_key=ApiKey("sk-secret-key"),
                           replicas=("http://u:secret@a:8000/v1", "http://b:8000/v1?api_key=hush"),
                           warmup_urls=("http://u:secret@rank-0:8000/v1",), routing="least-outstanding")
    data = json.loads(json.dumps(target.to_json()))
    text = json.dumps(data)
    assert "secret" not in text and "hush" not in text
    assert data["replicas"] == ["http://***@a:8000/v1", "http://b:8000/v1?api_key=***"]
    assert data["warmup_urls"] == ["http://***@rank-0:8000/v1"] and data["routing"] == "least-outstanding"
    back = ServingTarget.from_json(data)
    assert len(back.replica_urls()) == 2 and back.routing == "least-outstanding"
    assert back.endpoint_urls() == tuple(data["replicas"] + data["warmup_urls"])
    copied = pickle.loads(pickle.dumps(target))
    assert copied == target and copied.endpoint_urls()[2] == "http://u:secret@rank-0:8000/v1"
    one = ServingTarget("http://a/v1", "m", "completions").to_json()
    assert not {"replicas", "warmup_urls", "routing"} & set(one)  # a target of one URL reads as before
    assert ServingTarget.from_json(one).replica_urls() == ("http://a/v1",)


def test_the_scenario_line_keeps_the_replicas() -> None:
    target = ServingTarget("http://a/v1", "m", "completions", replicas=("http://a/v1", "http://b/v1"))
    start = ScenarioStart(nodeid="t", profile="p", case_id="c", scenario=Scenario(input_len=8, output_len=4),
                          target=target, facts={}, looks=1, planned=4, records="r", log="l")
    back = ScenarioStart.from_json(json.loads(json.dumps(start.to_json())))
    assert back.target.replica_urls() == ("http://a/v1", "http://b/v1") and back.target.routing == "round-robin"
