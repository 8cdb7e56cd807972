"""Fixtures for the simulator tests: a threaded simulator with a short step time, and SSE helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_deepseek.sim.config import SimConfig
from pytest_deepseek.sim.presets import get_preset
from pytest_deepseek.sim.server import ThreadedSim

QUICK = get_preset("deepseek-v3").replace(step_base_ms=2.0, step_per_seq_ms=0.05, prefill_tps=1e6)


@dataclass
class StreamResult:
    """What a streaming client saw: parsed events, their arrival times, the raw tail."""

    status: int
    headers: dict[str, str]
    events: list[Any] = field(default_factory=list)  # parsed JSON objects, or the string "[DONE]"
    times: list[int] = field(default_factory=list)  # perf_counter_ns at which each event was parsed

    def token_events(self) -> list[dict[str, Any]]:
        """Events that carry generated text (answer or reasoning)."""
        out = []
        for ev in self.events:
            if not isinstance(ev, dict) or not ev.get("choices"):
                continue
            choice = ev["choices"][0]
            delta = choice.get("delta", {})
            if choice.get("text") or delta.get("content") or delta.get("reasoning_content"):
                out.append(ev)
        return out


def stream(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> StreamResult:
    """POST `body` with stream=True and parse every SSE event as it arrives."""
    with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as resp:
        result = StreamResult(resp.status_code, dict(resp.headers))
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[len("data: "):]
            result.events.append(payload if payload == "[DONE]" else json.loads(payload))
            result.times.append(time.perf_counter_ns())
    return result


def text_of(events: list[dict[str, Any]], key: str = "content") -> str:
    """Concatenated text of token events (`text` for completions, `delta[key]` for chat)."""
    parts = []
    for ev in events:
        choice = ev["choices"][0]
        parts.append(choice["text"] if "text" in choice else choice["delta"].get(key) or "")
    return "".join(parts)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSim]:
    """A threaded simulator (deepseek-v3 shape, 2 ms steps) with a truth file."""
    truth = tmp_path_factory.mktemp("sim") / "truth.jsonl"
    with ThreadedSim(QUICK, truth_path=truth) as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An httpx client with a generous timeout."""
    with httpx.Client(timeout=30) as c:
        yield c


def start(config: SimConfig, truth_path: Path | None = None) -> ThreadedSim:
    """A fresh threaded simulator (use as a context manager)."""
    return ThreadedSim(config, truth_path=truth_path)
