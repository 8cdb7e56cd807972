"""The real-time schedule: emissions follow the engine model's absolute step times, without drift."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx

from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.truth import read_truth

from .conftest import QUICK, start, stream


def test_steps_follow_the_model_without_drift(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    # A subprocess: in this process the client thread would hold the GIL for up to 5 ms at a time.
    with start_sim("sim://deepseek-v3", truth_path=truth_path) as server, httpx.Client(timeout=30) as client:
        stream(client, server.base_url + "/completions",
               {"prompt": "hello", "max_tokens": 30, "ignore_eos": True}, headers={"x-request-id": "t"})
    record = read_truth(truth_path)["t"]
    step_ms = 20.3  # 20 ms + 0.3 ms per running sequence
    gaps = [(b - a) / 1e6 for a, b in zip(record.emit_ns, record.emit_ns[1:])]
    assert abs(statistics.median(gaps) - step_ms) < 1.5
    # Each sleep wakes a little late (about 1 ms), but targets are absolute: lateness does not add up
    # over the 29 steps (a relative sleep would end about 29 ms behind).
    offsets = [(t - record.emit_ns[0]) / 1e6 - k * step_ms for k, t in enumerate(record.emit_ns)]
    assert statistics.median(offsets[-5:]) < 5
    first_ms = (record.first_emit_ns - record.arrival_ns) / 1e6  # one step (prefill of 1 token is ~0)
    assert step_ms - 0.5 < first_ms < step_ms + 5


def test_client_disconnect_frees_the_sequence(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    with start(QUICK, truth_path) as server:
        with httpx.Client(timeout=30) as client:
            with client.stream("POST", server.base_url + "/completions",
                               json={"prompt": "x", "max_tokens": 5000, "ignore_eos": True, "stream": True},
                               headers={"x-request-id": "gone"}) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data: {"):
                        break
        deadline = time.monotonic() + 5
        while server.app.engine.model.num_running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.app.engine.model.num_running == 0
    record = read_truth(truth_path)["gone"]
    assert record.error == "client_disconnect" and 0 < record.completion_tokens < 5000
