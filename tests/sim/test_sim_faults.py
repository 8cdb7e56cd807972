"""Injected faults as they go on the wire (raw sockets) and as the truth file records them.

One test per fault name. Timing bounds are generous: these must hold on a busy 2-core machine.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_deepseek.sim.config import SimConfig
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.server import ThreadedSim
from pytest_deepseek.sim.truth import TruthRecord, read_truth

from .conftest import QUICK, start, stream

STREAM_BODY = {"prompt": "tell me", "max_tokens": 10, "ignore_eos": True, "stream": True}
USAGE = {"stream_options": {"include_usage": True}}


@dataclass
class Wire:
    """Every byte a raw client received for one request, when, and how the reading ended."""

    data: bytes = b""
    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (perf_counter_ns, bytes so far) per recv
    error: OSError | None = None  # what ended the reading (None: a clean end of stream, or we stopped)

    @property
    def head(self) -> bytes:
        head, sep, _ = self.data.partition(b"\r\n\r\n")
        return head if sep else b""

    @property
    def status(self) -> int | None:
        return int(self.head.split(b" ")[1]) if self.head else None

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name:
                return value.strip()
        return None

    def body(self) -> tuple[bytes, bool]:
        """The de-chunked body and whether its terminating chunk arrived."""
        raw = self.data[len(self.head) + 4 :]
        out, pos = bytearray(), 0
        while (end := raw.find(b"\r\n", pos)) >= 0:
            size = int(raw[pos:end], 16)
            if size == 0:
                return bytes(out), raw[end + 2 : end + 4] == b"\r\n"
            out += raw[end + 2 : end + 2 + size]
            pos = end + 2 + size + 2
        return bytes(out), False

    def data_lines(self) -> list[str]:
        return [line[len("data: "):] for line in self.body()[0].decode().split("\n") if line.startswith("data: ")]

    def events(self) -> list[Any]:
        """Parsed SSE data lines ("[DONE]" and unparsable lines kept as text)."""
        out: list[Any] = []
        for line in self.data_lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(line)
        return out

    def token_events(self) -> list[dict[str, Any]]:
        return [ev for ev in self.events() if isinstance(ev, dict) and ev.get("choices")]

    def time_of(self, offset: int) -> int:
        """When byte number `offset` of the response had arrived."""
        return next(t for t, total in self.arrivals if total > offset)

    def event_times(self) -> list[int]:
        """Arrival time of each SSE event (the end of its blank line)."""
        times, pos = [], self.data.find(b"\r\n\r\n") + 4
        while (start := self.data.find(b"data: ", pos)) >= 0:
            pos = self.data.find(b"\n\n", start)
            if pos < 0:
                break
            times.append(self.time_of(pos + 1))
        return times


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def send_post(sock: socket.socket, body: dict[str, Any], request_id: str, path: str = "/v1/completions") -> None:
    payload = json.dumps(body).encode()
    sock.sendall(b"POST %b HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-request-id: %b\r\n"
                 b"connection: close\r\ncontent-length: %d\r\n\r\n%b"
                 % (path.encode(), request_id.encode(), len(payload), payload))


def read(sock: socket.socket, wire: Wire, until: Callable[[Wire], bool] | None = None) -> Wire:
    """Receive into `wire` until the server ends the stream, an error, or `until(wire)` holds."""
    try:
        while not (until and until(wire)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            wire.data += chunk
            wire.arrivals.append((time.perf_counter_ns(), len(wire.data)))
    except OSError as exc:
        wire.error = exc
    return wire


def post(port: int, body: dict[str, Any], request_id: str, until: Callable[[Wire], bool] | None = None) -> Wire:
    """One request on a fresh connection, read to its end (or until `until`)."""
    with connect(port) as sock:
        send_post(sock, body, request_id)
        return read(sock, Wire(), until)


def close_with_reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def events_at_least(n: int) -> Callable[[Wire], bool]:
    return lambda wire: len(wire.token_events()) >= n


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def idle(sim: ThreadedSim) -> bool:
    model = sim.app.engine.model
    return model.num_running == 0 and model.num_waiting == 0


@contextmanager
def faulty(tmp_path: Path, faults: dict[str, str],
           **changes: Any) -> Iterator[tuple[ThreadedSim, dict[str, TruthRecord]]]:
    """A quick simulator with `faults`; the truth dict is filled when the block exits."""
    truth: dict[str, TruthRecord] = {}
    path = tmp_path / "truth.jsonl"
    config: SimConfig = QUICK.replace(faults=faults, **changes)
    with start(config, path) as sim:
        yield sim, truth
    truth.update(read_truth(path))


def finish_reasons(wire: Wire) -> list[str | None]:
    return [ev["choices"][0]["finish_reason"] for ev in wire.token_events()]


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,status", [("http_500", 500), ("http_502", 502), ("http_503", 503)])
def test_http_status_faults_answer_a_json_error(tmp_path: Path, name: str, status: int) -> None:
    with faulty(tmp_path, {name: "at:2"}) as (sim, truth):
        ok = post(sim.port, STREAM_BODY, "ok")
        wire = post(sim.port, STREAM_BODY, "hit")
    assert ok.status == 200 and ok.events()[-1] == "[DONE]"
    assert wire.status == status and wire.error is None
    assert wire.header("content-type") == "application/json" and wire.header("retry-after") is None
    error = json.loads(wire.data.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == status and "request 2" in error["message"]
    record = truth["hit"]
    assert (record.fault, record.status, record.error) == (name, status, f"injected_http_{status}")
    assert record.emit_ns == [] and record.completion_tokens == 0
    assert (truth["ok"].fault, truth["ok"].error) == (None, None)


def test_rate_limited_answers_429_with_retry_after(tmp_path: Path) -> None:
    with faulty(tmp_path, {"rate_limited": "every:1"}, retry_after_s=7) as (sim, truth):
        wire = post(sim.port, STREAM_BODY, "limited")
    assert wire.status == 429 and wire.header("retry-after") == "7"
    error = json.loads(wire.data.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == 429 and error["type"] == "RateLimitError"
    assert (truth["limited"].fault, truth["limited"].status, truth["limited"].error) == (
        "rate_limited", 429, "injected_http_429")


def test_reset_before_headers_sends_nothing_then_a_tcp_reset(tmp_path: Path) -> None:
    with faulty(tmp_path, {"reset_before_headers": "at:1"}) as (sim, truth):
        wire = post(sim.port, STREAM_BODY, "reset")
        after = post(sim.port, STREAM_BODY, "after")
    assert wire.data == b"" and isinstance(wire.error, ConnectionResetError)
    assert after.status == 200 and after.events()[-1] == "[DONE]"
    assert (truth["reset"].fault, truth["reset"].status, truth["reset"].error) == (
        "reset_before_headers", 0, "reset_before_headers")


def test_reset_midstream_sends_half_the_tokens_then_a_tcp_reset(tmp_path: Path) -> None:
    with faulty(tmp_path, {"reset_midstream": "at:1"}) as (sim, truth):
        wire = post(sim.port, {**STREAM_BODY, **USAGE}, "cut")
        assert wait_until(lambda: idle(sim))
    body, complete = wire.body()
    assert wire.status == 200 and isinstance(wire.error, ConnectionResetError) and not complete
    assert len(wire.token_events()) == 5 and "[DONE]" not in wire.events()
    assert set(finish_reasons(wire)) == {None} and not any("usage" in ev for ev in wire.token_events())
    record = truth["cut"]
    assert (record.fault, record.status, record.error, record.completion_tokens) == ("reset_midstream", 200,
                                                                                     "reset_midstream", 5)
    assert record.finish_reason is None and len(record.emit_ns) == 5


def test_stall_pauses_after_half_the_tokens_then_goes_on(tmp_path: Path) -> None:
    stall_s = 0.6
    with faulty(tmp_path, {"stall": "at:1"}, stall_s=stall_s) as (sim, truth):
        wire = post(sim.port, {**STREAM_BODY, **USAGE}, "stalled")
    assert wire.status == 200 and wire.error is None and wire.body()[1]
    events = wire.events()
    assert len(wire.token_events()) == 10 and events[-1] == "[DONE]" and events[-2]["usage"]["completion_tokens"] == 10
    assert finish_reasons(wire)[-1] == "length"
    gaps = [(b - a) / 1e9 for a, b in zip(wire.event_times(), wire.event_times()[1:])]
    assert stall_s - 0.1 < gaps[4] < stall_s + 1.5  # between token 5 and token 6
    assert max(gaps[:4] + gaps[5:]) < stall_s / 2
    record = truth["stalled"]
    assert (record.fault, record.status, record.error, record.finish_reason) == ("stall", 200, None, "length")
    true_gap = (record.emit_ns[5] - record.emit_ns[4]) / 1e9
    assert stall_s - 0.01 < true_gap < stall_s + 1.0


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_client_gone_during_a_stall_leaves_nothing_behind(tmp_path: Path, how: str) -> None:
    with faulty(tmp_path, {"stall": "every:1"}, stall_s=30) as (sim, truth):
        with connect(sim.port) as sock:
            send_post(sock, STREAM_BODY, "left")
            wire = read(sock, Wire(), events_at_least(5))
            if how == "reset":
                close_with_reset(sock)
        # Noticed during the stall, not at its end: the engine is idle and the request is recorded.
        assert wait_until(lambda: idle(sim) and sim.server.open_connections == 0, 2.0)
    assert len(wire.token_events()) == 5
    record = truth["left"]
    assert (record.fault, record.error, record.completion_tokens, record.finish_reason) == (
        "stall", "client_disconnect", 5, None)


def test_malformed_puts_one_bad_line_mid_stream_then_goes_on(tmp_path: Path) -> None:
    with faulty(tmp_path, {"malformed": "at:1"}) as (sim, truth):
        wire = post(sim.port, {**STREAM_BODY, **USAGE}, "bad")
    events = wire.events()
    bad = [i for i, ev in enumerate(events) if not isinstance(ev, dict) and ev != "[DONE]"]
    assert len(bad) == 1 and events[bad[0]] == "{not json" and 0 < bad[0] < len(events) - 2
    assert len(wire.token_events()) == 10 and finish_reasons(wire)[-1] == "length" and events[-1] == "[DONE]"
    record = truth["bad"]
    assert (record.fault, record.status, record.error, record.completion_tokens) == ("malformed", 200, "malformed", 10)


def test_error_event_mid_stream_then_the_end(tmp_path: Path) -> None:
    with faulty(tmp_path, {"error_event": "at:1"}) as (sim, truth):
        wire = post(sim.port, STREAM_BODY, "err")
    events = wire.events()
    assert wire.status == 200 and wire.error is None and wire.body()[1]
    assert len(wire.token_events()) == 5 and events[-2]["error"]["code"] == 500 and events[-1] == "[DONE]"
    assert set(finish_reasons(wire)) == {None}
    record = truth["err"]
    assert (record.fault, record.status, record.error, record.completion_tokens) == ("error_event", 200,
                                                                                     "error_event", 5)


def test_no_done_has_finish_reason_and_usage_but_no_done_line(tmp_path: Path) -> None:
    with faulty(tmp_path, {"no_done": "at:1"}) as (sim, truth):
        wire = post(sim.port, {**STREAM_BODY, **USAGE}, "nodone")
    events = wire.events()
    assert wire.status == 200 and wire.error is None and wire.body()[1]  # a clean end of the chunked body
    assert "[DONE]" not in events and finish_reasons(wire)[-1] == "length"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 10
    record = truth["nodone"]
    assert (record.fault, record.error, record.finish_reason, record.completion_tokens) == (
        "no_done", None, "length", 10)


def test_no_usage_never_sends_usage(tmp_path: Path, client: httpx.Client) -> None:
    asked = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    with faulty(tmp_path, {"no_usage": "every:1"}) as (sim, truth):
        wire = post(sim.port, {**STREAM_BODY, **asked}, "nousage")
        whole = client.post(sim.base_url + "/completions", json={"prompt": "x", "max_tokens": 4, "ignore_eos": True},
                            headers={"x-request-id": "whole"})
    assert wire.events()[-1] == "[DONE]" and len(wire.token_events()) == 10
    assert not any("usage" in ev for ev in wire.events() if isinstance(ev, dict)) and b'"usage"' not in wire.data
    assert whole.status_code == 200 and "usage" not in whole.json()
    assert whole.json()["choices"][0]["finish_reason"] == "length"
    for rid in ("nousage", "whole"):
        assert (truth[rid].fault, truth[rid].error, truth[rid].finish_reason) == ("no_usage", None, "length")


def test_truncated_ends_the_body_cleanly_after_half_the_tokens(tmp_path: Path) -> None:
    with faulty(tmp_path, {"truncated": "at:1"}) as (sim, truth):
        wire = post(sim.port, {**STREAM_BODY, **USAGE}, "short")
        assert wait_until(lambda: idle(sim))
    assert wire.status == 200 and wire.error is None and wire.body()[1]  # terminating chunk, then EOF
    assert len(wire.token_events()) == 5 and set(finish_reasons(wire)) == {None}
    assert "[DONE]" not in wire.events() and b'"usage"' not in wire.data
    record = truth["short"]
    assert (record.fault, record.status, record.error, record.completion_tokens, record.finish_reason) == (
        "truncated", 200, "truncated", 5, None)


def test_slow_headers_trickle_one_byte_at_a_time_then_the_stream(tmp_path: Path) -> None:
    trickle_s = 0.005
    with faulty(tmp_path, {"slow_headers": "at:1"}, header_trickle_s=trickle_s) as (sim, truth):
        t_send = time.perf_counter_ns()
        wire = post(sim.port, STREAM_BODY, "slow")
        quick = post(sim.port, STREAM_BODY, "quick")
    head_len = len(wire.head) + 4
    assert wire.status == 200 and wire.head == quick.head.replace(b"quick", b"slow")
    head_done = wire.time_of(head_len - 1)
    assert (head_done - t_send) / 1e9 > 0.7 * trickle_s * (head_len - 1)
    recvs_in_head = sum(1 for _, total in wire.arrivals if total <= head_len)
    assert recvs_in_head > head_len / 4  # the head came in many small pieces, not at once
    assert wire.time_of(head_len) >= head_done and wire.events()[-1] == "[DONE]"  # the body followed
    assert len(wire.token_events()) == 10 and finish_reasons(wire)[-1] == "length"
    record = truth["slow"]
    assert (record.fault, record.status, record.error, record.finish_reason) == ("slow_headers", 200, None, "length")
    assert record.first_emit_ns is not None and record.first_emit_ns >= head_done - 2_000_000  # generated after
    assert truth["quick"].fault is None


def test_endless_streams_past_max_tokens_until_the_client_leaves(tmp_path: Path) -> None:
    with faulty(tmp_path, {"endless": "every:1"}) as (sim, truth):
        body = {**STREAM_BODY, "max_tokens": 3, "stream_options": {"include_usage": True}}
        wire = post(sim.port, body, "forever", until=events_at_least(15))
        assert wait_until(lambda: idle(sim))  # the client closed: the sequence is aborted
    assert wire.status == 200 and not wire.body()[1]
    assert len(wire.token_events()) >= 15 and set(finish_reasons(wire)) == {None}
    assert "[DONE]" not in wire.events() and b'"usage"' not in wire.data
    record = truth["forever"]
    assert (record.fault, record.error, record.finish_reason) == ("endless", "client_disconnect", None)
    assert record.completion_tokens >= 15


def test_refused_stops_listening_closes_open_streams_then_listens_again(tmp_path: Path) -> None:
    refused_s = 1.0
    with faulty(tmp_path, {"refused": "at:2"}, refused_s=refused_s) as (sim, truth):
        port = sim.port
        with connect(port) as open_stream:
            send_post(open_stream, {**STREAM_BODY, "max_tokens": 5000}, "open")
            before = read(open_stream, Wire(), events_at_least(1))
            trigger = post(port, STREAM_BODY, "trigger")
            t_refused = time.monotonic()
            after = read(open_stream, before)
        with pytest.raises(ConnectionRefusedError):
            connect(port).close()
        while True:  # poll until it listens again
            try:
                connect(port).close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() - t_refused < refused_s + 5
                time.sleep(0.02)
        down_s = time.monotonic() - t_refused
        assert sim.server.listening and sim.port == port
        with httpx.Client(timeout=10) as client:
            result = stream(client, sim.base_url + "/completions", {"prompt": "x", "max_tokens": 3})
        assert wait_until(lambda: idle(sim))
    assert trigger.data == b"" and trigger.status is None  # its connection closed with nothing sent
    assert after.status == 200 and not after.body()[1] and 1 <= len(after.token_events()) < 5000
    assert refused_s - 0.2 < down_s < refused_s + 3
    assert result.status == 200 and result.events[-1] == "[DONE]"
    assert (truth["trigger"].fault, truth["trigger"].status, truth["trigger"].error) == ("refused", 0, "refused")
    assert (truth["open"].fault, truth["open"].error) == (None, "server_closed")


# ---------------------------------------------------------------------------------------------
def _counter(text: str, name: str, label: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and label in line)


def test_metrics_count_faults_by_name_and_legacy_keys_are_faults(tmp_path: Path, client: httpx.Client) -> None:
    faults = {"no_usage": "every:2", "http_503": "at:4", "no_done": "at:1"}
    with faulty(tmp_path, faults, fail_every=3) as (sim, truth):
        statuses = [client.post(sim.base_url + "/completions", json={"prompt": "x", "max_tokens": 2},
                                headers={"x-request-id": f"r{i}"}).status_code for i in range(1, 7)]
        text = client.get(sim.base_url.removesuffix("/v1") + "/metrics").text
    # r4 is selected by http_503 and no_usage: http_503 comes first; r6 by fail_every and no_usage.
    assert statuses == [200, 200, 500, 503, 200, 500]
    assert [truth[f"r{i}"].fault for i in range(1, 7)] == ["no_done", "no_usage", "http_500", "http_503",
                                                          None, "http_500"]
    count = {name: _counter(text, "sim:faults_injected_total", f'fault="{name}"')
             for name in ("no_done", "no_usage", "http_500", "http_503", "stall")}
    assert count == {"no_done": 1, "no_usage": 1, "http_500": 2, "http_503": 1, "stall": 0}


def test_stopping_while_refusing_is_clean(tmp_path: Path) -> None:
    with faulty(tmp_path, {"refused": "every:1"}, refused_s=30) as (sim, truth):
        assert post(sim.port, STREAM_BODY, "down").data == b""
        assert not sim.server.listening
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5 and truth["down"].error == "refused"


@pytest.mark.parametrize("name", ["reset_midstream", "truncated", "malformed", "stall", "slow_headers"])
def test_non_streamed_requests_get_the_fault_too(tmp_path: Path, name: str) -> None:
    body = {**STREAM_BODY, "stream": False}
    with faulty(tmp_path, {name: "at:1"}, stall_s=0.3, header_trickle_s=0.003) as (sim, truth):
        t0 = time.perf_counter_ns()
        wire = post(sim.port, body, "whole")
        elapsed_s = (time.perf_counter_ns() - t0) / 1e9
    payload = wire.data.partition(b"\r\n\r\n")[2]
    record = truth["whole"]
    assert record.fault == name
    if name == "reset_midstream":
        assert wire.data == b"" and isinstance(wire.error, ConnectionResetError) and record.status == 0
    elif name == "truncated":
        data = json.loads(payload)
        assert data["choices"][0]["finish_reason"] is None and data["usage"]["completion_tokens"] == 5
    elif name == "malformed":
        assert wire.status == 200 and payload == b"{not json" and record.error == "malformed"
    elif name == "slow_headers":  # generated first, then the head trickles, then the body
        head_len = len(wire.head) + 4
        assert sum(1 for _, total in wire.arrivals if total <= head_len) > head_len / 4
        assert json.loads(payload)["usage"]["completion_tokens"] == 10 and record.error is None
        assert record.first_emit_ns is not None and record.first_emit_ns >= wire.time_of(head_len - 1) - 2_000_000
    else:
        assert json.loads(payload)["usage"]["completion_tokens"] == 10 and elapsed_s > 0.25
        assert record.error is None and record.finish_reason == "length"


def test_killed_sim_restarts_on_the_same_port() -> None:
    first = start_sim("sim://fast")
    port = first.port
    assert first.kill() == -9 and first.process.poll() == -9
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.base_url + "/models", timeout=2)
    with start_sim("sim://fast", port=port) as second:
        assert second.port == port and second.base_url == first.base_url
        resp = httpx.post(second.base_url + "/completions", json={"prompt": "hi", "max_tokens": 3}, timeout=10)
        assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 3
