"""Streaming client and endpoint helpers against scripted stub servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import gzip
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_deepseek.serving import client as client_module
from pytest_deepseek.serving import endpoint_api
from pytest_deepseek.serving.client import (
    build_request_body,
    make_http_client,
    retry_after_seconds,
    send_request,
    status_kind,
)
from pytest_deepseek.serving.records import ERROR_KINDS, Deadlines, RequestRecord, RequestSpec

HOST = "127.0.0.1"
MS = 1_000_000


# --- a scripted HTTP/1.1 server running in the test's event loop ------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]  # returns keep-alive


class StubServer:
    """Accepts connections on 127.0.0.1:<free port> and answers each request with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    async def __aenter__(self) -> StubServer:  # noqa: PYI034
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                if not await self.handler(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode().split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    raw = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, json.loads(raw) if raw else None)


async def start_stream(writer: asyncio.StreamWriter, content_type: str = "text/event-stream") -> None:
    writer.write(
        f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n".encode()
    )
    await writer.drain()


async def send_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def end_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def event(obj: object) -> bytes:
    return b"data: " + (obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()) + b"\n\n"


def chat(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
    chunk: dict[str, Any] = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        chunk["usage"] = usage
    return event(chunk)


def completion(text: str, finish: str | None = None) -> bytes:
    return event({"object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": finish}]})


def usage_only(prompt: int, completion_tokens: int) -> bytes:
    return event({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens}})


def spec(api: str = "chat", **kw: Any) -> RequestSpec:
    fields: dict[str, Any] = {"index": 0, "api": api, "model": "tiny", "max_tokens": 8}
    if api == "chat":
        fields["messages"] = ({"role": "user", "content": "hi"},)
    else:
        fields["prompt"] = "hi"
    fields.update(kw)
    return RequestSpec(**fields)


async def fetch(
    base_url: str,
    transport: str,
    request: RequestSpec | None = None,
    *,
    timeout_s: float = 5.0,
    deadlines: Deadlines | None = None,
    api_key: str | None = None,
    **kw: Any,
) -> RequestRecord:
    async with make_http_client(
        base_url, concurrency=2, api_key=api_key, deadlines=deadlines, timeout_s=None if deadlines else timeout_s,
        transport=transport,  # type: ignore[arg-type]
    ) as http:
        return await send_request(http, request or spec(), request_id="req-0", t_queued=0, **kw)


try:
    import httpx_aiohttp  # noqa: F401

    TRANSPORTS = ["httpx", "aiohttp"]
except ImportError:
    TRANSPORTS = ["httpx"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every network test runs on each transport the client can use here."""
    return str(request.param)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --- request bodies --------------------------------------------------------------------------


def test_chat_body_shape() -> None:
    body = build_request_body(spec("chat", max_tokens=64))
    assert body == {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 64,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
        "min_tokens": 64,
    }


def test_completions_body_shape_with_continuous_usage_and_extra_body() -> None:
    request = spec("completions", force_output_len=False,
                   extra_body={"temperature": 0.6, "top_p": 0.95, "stream_options": {"x": 1}})
    body = build_request_body(request, continuous_usage=True)
    assert body["prompt"] == "hi" and "messages" not in body
    assert "ignore_eos" not in body and "min_tokens" not in body
    assert body["temperature"] == 0.6 and body["top_p"] == 0.95
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True, "x": 1}


def test_body_requires_prompt_or_messages() -> None:
    with pytest.raises(ValueError):
        build_request_body(RequestSpec(index=3, api="chat", model="m"))


# --- streams ---------------------------------------------------------------------------------


def test_timing_of_a_normal_stream(transport: str) -> None:
    """50 ms to the first token, then one token every 10 ms: TTFT ~ 50 ms, TPOT ~ 10 ms.

    The server stamps each token just before writing it, on the same clock: the client's stamp must
    follow it closely whatever the machine's load, while the absolute figures only hold on a
    machine that is not saturated (the server's own sleeps run late there).
    """
    n = 11
    written: list[int] = []

    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await send_chunk(writer, chat({"role": "assistant", "content": ""}))
        await asyncio.sleep(0.050)
        for i in range(n):
            if i:
                await asyncio.sleep(0.010)
            written.append(time.perf_counter_ns())
            await send_chunk(writer, chat({"content": f"t{i} "}, finish="length" if i == n - 1 else None))
        await send_chunk(writer, usage_only(5, n) + event("[DONE]"))
        await end_stream(writer)
        return True

    async def main() -> tuple[RequestRecord, StubServer]:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport), server

    record, server = run(main())
    assert record.success, record.error_detail
    assert record.status == 200 and record.done_seen and record.finish_reason == "length"
    assert (record.prompt_tokens, record.completion_tokens, record.approximate) == (5, n, False)
    assert record.event_tokens == [1] * n and record.event_reasoning == [False] * n
    assert record.text == "".join(f"t{i} " for i in range(n))
    lags = sorted((seen - sent) / MS for seen, sent in zip(record.event_times, written))
    assert lags[0] >= 0 and lags[n // 2] <= 3.0, lags
    ttft = (record.t_first_token - record.t_send) / MS
    tpot = (record.t_last_token - record.t_first_token) / (record.n_tokens - 1) / MS
    true_ttft = (written[0] - record.t_send) / MS
    assert 50.0 <= true_ttft <= ttft <= true_ttft + 5.0, (true_ttft, ttft)
    assert 50.0 <= ttft <= 100.0 and 9.0 <= tpot <= 20.0, (ttft, tpot)
    assert record.t_first_answer == record.t_first_token
    assert record.t_send <= record.t_headers <= record.t_first_token <= record.t_last_token <= record.t_end
    assert server.requests[0].headers["x-request-id"] == "req-0"
    assert server.requests[0].path == "/v1/chat/completions"
    assert server.requests[0].body["stream"] is True


def test_completions_request_reuses_the_connection(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await send_chunk(writer, completion("a") + completion("b", "stop"))
        await send_chunk(writer, usage_only(2, 2))
        await send_chunk(writer, event("[DONE]"))
        await end_stream(writer)
        return True

    async def main() -> tuple[list[RequestRecord], StubServer]:
        async with StubServer(handler) as server:
            async with make_http_client(
                server.base_url, concurrency=1, api_key="sk-secret", timeout_s=5, transport=transport  # type: ignore[arg-type]
            ) as http:
                records = [
                    await send_request(http, spec("completions", index=i), request_id=f"r{i}", t_queued=0)
                    for i in range(3)
                ]
            return records, server

    records, server = run(main())
    assert all(r.success for r in records)
    assert [r.text for r in records] == ["ab"] * 3
    assert [r.index for r in records] == [0, 1, 2]
    assert server.connections == 1  # keep-alive: the stream was read to its end
    assert [r.path for r in server.requests] == ["/v1/completions"] * 3
    assert server.requests[0].headers["authorization"] == "Bearer sk-secret"
    assert server.requests[0].body["prompt"] == "hi"
    assert [r.headers["x-request-id"] for r in server.requests] == ["r0", "r1", "r2"]


def test_reasoning_sets_first_answer_after_first_token(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await send_chunk(writer, chat({"reasoning_content": "think"}))
        await asyncio.sleep(0.03)
        await send_chunk(writer, chat({"content": "answer"}, finish="stop"))
        await send_chunk(writer, usage_only(1, 2) + event("[DONE]"))
        await end_stream(writer)
        return True

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport)

    record = run(main())
    assert record.success
    assert record.event_reasoning == [True, False]
    assert record.reasoning_text == "think" and record.text == "answer"
    assert record.t_first_answer - record.t_first_token >= 15 * MS  # the server waited 30 ms


def test_no_usage_counts_tokens_and_marks_approximate(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await send_chunk(writer, chat({"role": "assistant", "reasoning_content": "r1 r2"}))
        await send_chunk(writer, chat({"content": " a b c"}, finish="stop"))
        await end_stream(writer)  # no usage, no [DONE]: the finish_reason ends it
        return True

    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text.split())

    async def main() -> tuple[RequestRecord, RequestRecord]:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport, count_tokens=count), await fetch(server.base_url, transport)

    with_count, without = run(main())
    assert with_count.success and not with_count.done_seen
    assert counted == ["r1 r2 a b c"]
    assert with_count.completion_tokens == 5 and with_count.approximate
    assert without.success and without.approximate
    assert without.completion_tokens is None and without.n_tokens == 2  # one per token event


def answer(writer: asyncio.StreamWriter, status: str, body: bytes, *headers: str) -> None:
    """A whole non-streamed answer."""
    head = "".join(f"{h}\r\n" for h in headers)
    writer.write(f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{head}content-length: {len(body)}"
                 "\r\n\r\n".encode() + body)


def answered(transport: str, status: str, body: bytes, *headers: str, **kw: Any) -> RequestRecord:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        answer(writer, status, body, *headers)
        await writer.drain()
        return True

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport, **kw)

    record: RequestRecord = run(main())
    return record


def test_non_200_keeps_status_and_body_head(transport: str) -> None:
    message = "x" * 2000
    body = json.dumps({"object": "error", "message": message, "code": 422}).encode()
    record = answered(transport, "422 Unprocessable Entity", body)
    assert not record.success
    assert (record.error_kind, record.status) == ("http_4xx", 422)
    assert record.error_detail and record.error_detail.startswith('HTTP 422: {"object": "error"')
    assert len(record.error_detail) < 600


@pytest.mark.parametrize(("status", "kind"), [("404 Not Found", "http_4xx"), ("400 Bad Request", "http_4xx"),
                                               ("500 Internal Server Error", "http_5xx"),
                                               ("502 Bad Gateway", "http_5xx"),
                                               ("503 Service Unavailable", "http_5xx")])
def test_status_codes_have_their_kind(transport: str, status: str, kind: str) -> None:
    record = answered(transport, status, b'{"error": {"message": "no"}}')
    assert (record.success, record.error_kind, record.status) == (False, kind, int(status.split()[0]))
    assert record.retry_after_s is None and record.error_detail.startswith(f"HTTP {status.split()[0]}: ")


def test_rate_limited_keeps_retry_after_seconds(transport: str) -> None:
    record = answered(transport, "429 Too Many Requests", b'{"error": "slow down"}', "Retry-After: 7")
    assert (record.success, record.error_kind, record.status) == (False, "rate_limited", 429)
    assert record.retry_after_s == 7
    assert record.error_detail and "Retry-After '7' (7 s)" in record.error_detail and "slow down" in record.error_detail


def test_rate_limited_converts_an_http_date(transport: str) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    record = answered(transport, "429 Too Many Requests", b"{}", f"Retry-After: {when}")
    assert record.error_kind == "rate_limited"
    assert record.retry_after_s is not None and 25 <= record.retry_after_s <= 31, record.retry_after_s
    assert when in (record.error_detail or "")


def test_retry_after_values() -> None:
    assert retry_after_seconds("120") == 120 and retry_after_seconds(" 0 ") == 0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30  # 07:28:00 GMT
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412600.0) == 0  # already past
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None and retry_after_seconds("") is None


def test_status_kind_covers_every_status() -> None:
    assert [status_kind(s) for s in (429, 400, 404, 422, 499, 500, 503, 599, 302, 204)] == [
        "rate_limited", "http_4xx", "http_4xx", "http_4xx", "http_4xx", "http_5xx", "http_5xx", "http_5xx",
        "http_5xx", "http_5xx"]


def rst(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_connection_reset_mid_stream(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await send_chunk(writer, chat({"content": "a"}) + chat({"content": "b"}))
        await asyncio.sleep(0.02)
        rst(writer)
        return False

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport)

    record = run(main())
    assert not record.success
    assert record.error_kind == "reset", record.error_detail
    assert record.text == "ab" and len(record.event_times) == 2  # what arrived is kept


def test_connection_reset_before_headers(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        rst(writer)  # the request was read, nothing is answered
        return False

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport)

    record = run(main())
    assert (record.success, record.error_kind, record.status) == (False, "reset", None), record.error_detail
    assert record.t_headers is None and not record.event_times


def test_connection_closed_inside_a_chunk(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await send_chunk(writer, chat({"content": "a"}))
        writer.write(b"40\r\ndata: {\"choi")
        await writer.drain()
        writer.close()
        return False

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport)

    record = run(main())
    assert (record.success, record.error_kind) == (False, "reset")


# --- deadlines: each ends in about its limit, with the kind of the deadline that passed -------

MARGIN_S = 2.0  # a busy 2-core box: the plumbing is tested here, not timer precision
QUICK = Deadlines(connect_s=5, first_byte_s=60, stall_s=60, total_s=60)


def timed(transport: str, handler: Handler, deadlines: Deadlines) -> tuple[RequestRecord, float]:
    """The record of one request to a server answering with `handler`, and the seconds it took."""

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport, deadlines=deadlines)

    started = time.perf_counter()
    record = run(main())
    return record, time.perf_counter() - started


def test_headers_without_a_body_hit_the_first_byte_deadline(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)  # vLLM sends headers before the request leaves its queue
        await asyncio.sleep(30)
        return False

    record, took = timed(transport, handler, dataclasses.replace(QUICK, first_byte_s=0.4))
    assert (record.success, record.error_kind, record.status) == (False, "first_byte_timeout", 200)
    assert 0.35 <= took <= 0.4 + MARGIN_S, took
    assert record.error_detail and "first-byte deadline 0.4 s" in record.error_detail
    assert "headers after" in record.error_detail
    assert 0.35e9 <= record.t_end - record.t_send <= (0.4 + MARGIN_S) * 1e9


def test_a_header_trickle_hits_the_first_byte_deadline(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        for byte in b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    record, took = timed(transport, handler, dataclasses.replace(QUICK, first_byte_s=0.5))
    assert (record.success, record.error_kind, record.status) == (False, "first_byte_timeout", None)
    assert 0.45 <= took <= 0.5 + MARGIN_S, took
    assert record.error_detail and "no complete headers" in record.error_detail


def test_a_stall_after_some_tokens(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        for token in ("a", "b", "c"):
            await send_chunk(writer, chat({"content": token}))
            await asyncio.sleep(0.02)
        await asyncio.sleep(30)
        return False

    record, took = timed(transport, handler, dataclasses.replace(QUICK, stall_s=0.4))
    assert (record.success, record.error_kind) == (False, "stall")
    assert record.text == "abc" and len(record.event_times) == 3  # what arrived is kept
    assert 0.4 <= (record.t_end - record.event_times[-1]) / 1e9 <= 0.4 + MARGIN_S
    assert took <= 0.5 + MARGIN_S, took
    assert record.error_detail and "stall deadline 0.4 s" in record.error_detail and "3 token event" in record.error_detail


def test_a_stream_that_keeps_flowing_never_stalls(transport: str) -> None:
    """Gaps shorter than the stall deadline, a stream longer than it: the lazily re-armed timer lets it finish."""
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        for i in range(8):
            await send_chunk(writer, chat({"content": f"t{i}"}, finish="length" if i == 7 else None))
            await asyncio.sleep(0.1)
        await send_chunk(writer, usage_only(1, 8) + event("[DONE]"))
        await end_stream(writer)
        return True

    record, _ = timed(transport, handler, dataclasses.replace(QUICK, first_byte_s=0.5, stall_s=0.4, total_s=30))
    assert record.success, record.error_detail
    assert (record.t_last_token - record.t_first_token) / 1e9 >= 0.6  # far longer than the stall deadline


def test_a_long_wait_for_the_first_byte_is_not_a_stall(transport: str) -> None:
    """Before the first body byte only the first-byte deadline counts, however short the stall deadline."""
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        await asyncio.sleep(0.6)  # a long prefill
        await send_chunk(writer, chat({"content": "a"}, finish="stop") + event("[DONE]"))
        await end_stream(writer)
        return True

    record, _ = timed(transport, handler, dataclasses.replace(QUICK, first_byte_s=5, stall_s=0.2, total_s=30))
    assert record.success, record.error_detail
    assert (record.t_first_token - record.t_send) / 1e9 >= 0.5


def test_an_endless_stream_hits_the_total_deadline(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        while not writer.is_closing():
            await send_chunk(writer, chat({"content": "a"}))
            await asyncio.sleep(0.01)
        return False

    record, took = timed(transport, handler, dataclasses.replace(QUICK, first_byte_s=0.3, stall_s=0.3, total_s=0.6))
    assert (record.success, record.error_kind) == (False, "timeout")
    assert 0.55 <= took <= 0.6 + MARGIN_S, took
    assert record.error_detail and "total deadline 0.6 s" in record.error_detail
    assert len(record.event_times) >= 5


def test_timeout_caps_every_deadline(transport: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer)
        for _ in range(100):
            await send_chunk(writer, chat({"content": "a"}))
            await asyncio.sleep(0.01)
        return False

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport, timeout_s=0.15)

    record = run(main())
    assert (record.success, record.error_kind) == (False, "timeout")
    assert record.error_detail and "total deadline 0.15 s" in record.error_detail
    assert 5 <= len(record.event_times) < 100


def test_refused_connection(transport: str) -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    record = run(fetch(f"http://{HOST}:{port}", transport))
    assert (record.success, record.error_kind, record.status) == (False, "refused", None), record.error_detail
    assert record.t_send > 0 and record.t_end >= record.t_send


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listening socket never accepts and whose accept queue is full: the kernel drops
    further SYNs, so a connect there hangs until the client gives up."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect((HOST, port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for sock in fillers + [listener]:
            sock.close()


def test_connect_timeout(transport: str, full_backlog: int) -> None:
    started = time.perf_counter()
    record = run(fetch(f"http://{HOST}:{full_backlog}", transport,
                       deadlines=Deadlines(connect_s=0.5, first_byte_s=30, stall_s=30, total_s=30)))
    took = time.perf_counter() - started
    assert (record.success, record.error_kind, record.status) == (False, "connect_timeout", None), record.error_detail
    assert record.error_detail and "connect deadline of 0.5 s" in record.error_detail
    assert 0.45 <= took <= 1.0 + MARGIN_S, took  # aiohttp rounds a timeout up to the next tick of its clock


def stream_case(transport: str, *chunks: bytes, content_type: str = "text/event-stream") -> RequestRecord:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        await start_stream(writer, content_type)
        for chunk in chunks:
            await send_chunk(writer, chunk)
        await end_stream(writer)
        return True

    async def main() -> RequestRecord:
        async with StubServer(handler) as server:
            return await fetch(server.base_url, transport)

    record: RequestRecord = run(main())
    return record


def test_error_event_mid_stream_fails_the_request(transport: str) -> None:
    record = stream_case(transport, chat({"content": "a"}), event({"error": {"message": "boom", "code": 500}}),
                         chat({"content": "b"}, finish="stop"), event("[DONE]"))
    assert (record.success, record.error_kind) == (False, "server_error_event")
    assert record.error_detail and "boom" in record.error_detail and record.text == "a"


def test_malformed_event_fails_the_request(transport: str) -> None:
    record = stream_case(transport, chat({"content": "a"}), b"data: {oops\n\n", event("[DONE]"))
    assert (record.success, record.error_kind) == (False, "malformed")


def test_empty_and_truncated_streams(transport: str) -> None:
    empty = stream_case(transport, chat({"role": "assistant", "content": ""}), usage_only(3, 0), event("[DONE]"))
    assert (empty.success, empty.error_kind) == (False, "empty_stream")
    truncated = stream_case(transport, chat({"content": "a"}), chat({"content": "b"}))
    assert (truncated.success, truncated.error_kind) == (False, "truncated")
    assert truncated.n_tokens == 2
    not_streamed = stream_case(
        transport, b'{"choices": [{"message": {"content": "hi"}}]}', content_type="application/json"
    )
    assert not_streamed.error_kind == "empty_stream"
    assert not_streamed.error_detail and "application/json" in not_streamed.error_detail


def test_an_aiohttp_body_is_read_below_httpx(transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    original = client_module._read_aiohttp_stream

    async def reading(*args: Any) -> bool:
        reads.append("aiohttp")
        return await original(*args)

    monkeypatch.setattr(client_module, "_read_aiohttp_stream", reading)
    record = stream_case(transport, chat({"content": "a"}), chat({"content": "b"}, finish="stop"), event("[DONE]"))
    assert record.success and record.text == "ab" and len(record.event_times) == 2
    assert reads == (["aiohttp"] if transport == "aiohttp" else [])


def test_a_compressed_stream_is_decoded(transport: str) -> None:
    body = gzip.compress(chat({"content": "a"}) + chat({"content": "b"}, finish="stop") + event("[DONE]"))
    record = answered(transport, "200 OK", body, "content-encoding: gzip")
    assert record.success and record.text == "ab" and record.n_tokens == 2


def test_a_finish_reason_without_done_and_usage_is_a_success(transport: str) -> None:
    record = stream_case(transport, chat({"content": "a"}), chat({"content": "b"}, finish="stop"))
    assert record.success and record.error_kind is None
    assert not record.done_seen and record.approximate and record.finish_reason == "stop"


def test_every_failure_kind_is_a_known_kind(transport: str) -> None:
    record = stream_case(transport, b"data: [DONE]\n\n")
    assert record.error_kind in ERROR_KINDS


# --- endpoint helpers ------------------------------------------------------------------------

METRICS_TEXT = """\
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="length",model_name="tiny"} 7.0
vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"} 3.0
vllm:generation_tokens_total{model_name="tiny"} 448.0
process_open_fds 12
weird_label{path="/a}b",x="1"} 2 1700000000000
vllm:num_requests_running{model_name="tiny"} NaN
"""


class _Handler(BaseHTTPRequestHandler):
    tokenize_status = 200

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, json.dumps({"object": "list", "data": [{"id": "tiny"}, {"id": "other"}]}).encode())
        elif self.path == "/health":
            self._send(200, b"")
        elif self.path == "/metrics":
            self._send(200, METRICS_TEXT.encode(), "text/plain")
        else:
            self._send(404, b'{"detail": "Not Found"}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.path == "/tokenize" and type(self).tokenize_status == 200:
            n = len(body["prompt"].split()) if "prompt" in body else 100 + len(body["messages"])
            self._send(200, json.dumps({"count": n, "max_model_len": 2048, "tokens": list(range(n))}).encode())
        else:
            self._send(404, b'{"detail": "Not Found"}')


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer((HOST, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_base_url_normalisation() -> None:
    for given in ("http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/",
                  "http://h:8000/v1/chat/completions", " http://h:8000/v1/completions/"):
        assert endpoint_api.normalize_base_url(given) == "http://h:8000/v1"
        assert endpoint_api.server_root(given) == "http://h:8000"


def test_endpoint_helpers(http_server: str) -> None:
    assert endpoint_api.list_models(http_server + "/v1") == ["tiny", "other"]
    assert endpoint_api.list_models(http_server) == ["tiny", "other"]
    assert endpoint_api.health(http_server + "/v1")
    assert endpoint_api.tokenize(http_server + "/v1", "tiny", "one two three") == 3
    assert endpoint_api.tokenize(http_server, "tiny", [{"role": "user", "content": "x"}]) == 101
    counters = endpoint_api.prometheus_counters(http_server + "/v1")
    assert counters['vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"}'] == 3.0
    assert counters["vllm:request_success_total"] == 10.0
    assert counters["vllm:generation_tokens_total"] == 448.0
    assert counters["process_open_fds"] == 12.0
    assert counters['weird_label{path="/a}b",x="1"}'] == 2.0


def test_tokenize_absent_returns_none(http_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Handler, "tokenize_status", 404)
    assert endpoint_api.tokenize(http_server, "tiny", "a b") is None


def test_unreachable_endpoint_raises_with_url() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    base = f"http://{HOST}:{port}/v1"
    with pytest.raises(endpoint_api.EndpointError, match=f"{HOST}:{port}/v1/models"):
        endpoint_api.list_models(base, api_key="sk-never-shown")
    with pytest.raises(endpoint_api.EndpointError) as info:
        endpoint_api.prometheus_counters(base, api_key="sk-never-shown")
    assert "sk-never-shown" not in str(info.value)
    assert not endpoint_api.health(base)


def test_http_error_raises_with_url(http_server: str) -> None:
    with pytest.raises(endpoint_api.EndpointError, match="HTTP 404"):
        endpoint_api.list_models(http_server + "/nope/v1")
