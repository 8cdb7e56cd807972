"""Ground truth: the truth file agrees with what an httpx client received, chunk by chunk."""

from __future__ import annotations

import concurrent.futures
import uuid
from pathlib import Path

import httpx

from pytest_deepseek.sim.truth import TruthRecord, TruthWriter, read_truth

from .conftest import QUICK, StreamResult, start, stream


def test_truth_matches_what_the_client_received(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    config = QUICK.replace(tokens_per_step=2, reasoning_tokens=3, max_num_seqs=4)

    def one(i: int) -> tuple[str, StreamResult]:
        rid = f"req-{i}-{uuid.uuid4().hex[:6]}"
        with httpx.Client(timeout=30) as client:
            if i % 2:
                body = {"messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 8 + i,
                        "ignore_eos": True, "stream_options": {"include_usage": True}}
                url = server.base_url + "/chat/completions"
            else:
                body = {"prompt": f"prompt number {i}", "max_tokens": 8 + i, "ignore_eos": True,
                        "stream_options": {"include_usage": True}}
                url = server.base_url + "/completions"
            return rid, stream(client, url, body, headers={"x-request-id": rid})

    with start(config, truth_path) as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = dict(pool.map(one, range(8)))  # 8 clients, batch limit 4: some queue
    truth = read_truth(truth_path)
    assert set(truth) == set(results)
    for rid, result in results.items():
        record = truth[rid]
        usage = result.events[-2]["usage"]
        token_events = result.token_events()
        assert record.status == 200 and record.error is None and record.finish_reason == "length"
        assert len(record.emit_ns) == len(token_events) == len(record.emit_tokens)
        assert record.completion_tokens == usage["completion_tokens"] == sum(record.emit_tokens)
        assert record.prompt_tokens == usage["prompt_tokens"]
        assert record.reasoning_tokens == (3 if record.api == "chat" else 5)  # completions: + <think> tags
        assert record.first_emit_ns == record.emit_ns[0] >= record.arrival_ns
        assert record.emit_ns == sorted(record.emit_ns)
        # Each token event was received after the simulator wrote it (same clock, CLOCK_MONOTONIC).
        token_times = [t for ev, t in zip(result.events, result.times) if ev in token_events]
        assert all(seen >= sent for seen, sent in zip(token_times, record.emit_ns))


def test_truth_records_failures(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    with start(QUICK.replace(fail_every=2, error_event_every=3), truth_path) as server:
        with httpx.Client(timeout=30) as client:
            for i in range(1, 4):
                client.post(server.base_url + "/completions", json={"prompt": "x", "max_tokens": 6, "stream": True,
                                                                    "ignore_eos": True},
                            headers={"x-request-id": f"r{i}"})
    truth = read_truth(truth_path)
    assert (truth["r1"].status, truth["r1"].error, truth["r1"].completion_tokens) == (200, None, 6)
    assert (truth["r2"].status, truth["r2"].error, truth["r2"].emit_ns) == (500, "injected_http_500", [])
    assert (truth["r3"].status, truth["r3"].error, truth["r3"].completion_tokens) == (200, "error_event", 3)


def test_writer_flushes_on_interval_and_close(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = TruthWriter(path, interval_s=3600)
    writer.write(TruthRecord(request_id="a", arrival_ns=1, emit_ns=[2], emit_tokens=[1], completion_tokens=1))
    assert path.read_text() == ""  # buffered
    writer.close()
    assert read_truth(path)["a"].emit_ns == [2]
    eager = TruthWriter(path, interval_s=0)
    eager.write(TruthRecord(request_id="b", arrival_ns=1))
    assert set(read_truth(path)) == {"a", "b"}
    eager.close()
