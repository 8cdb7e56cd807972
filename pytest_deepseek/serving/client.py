"""The streaming client: sends one request to an OpenAI-compatible server and times its stream.

`send_request` never raises (cancellation aside): every outcome is a `RequestRecord`, and a failed
request carries an `error_kind` from `records.ERROR_KINDS`. Time stamps follow METRICS.md: the
arrival time of a token event is taken once per network read, as soon as the read returns.
Each request is held to its `Deadlines`: the transport enforces the connect deadline and one lazily
re-armed timer per request the others (first byte, stall, total), so that reading a stream costs
one stored time stamp per read and no timer work. The client never retries.
The API key never reaches a record: an error body or message that echoes it is redacted.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import importlib
import json
import math
import time
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any, Literal

import httpx

try:  # optional faster transport, same httpx API
    import aiohttp
    from httpx_aiohttp import AiohttpTransport
except ImportError:  # pragma: no cover - depends on the environment
    aiohttp = None  # type: ignore[assignment]
    AiohttpTransport = None  # type: ignore[assignment,misc]

from ..credentials import KeyLike, authorization_token, bearer_headers, redact
from ..tls import SYSTEM, TlsPolicy
from .endpoint_api import normalize_base_url
from .records import Deadlines, RequestRecord, RequestSpec
from .sse import SSEEvent, SSEParser, StreamInterpreter

_ERROR_BODY_CHARS = 500
_HEAD_BYTES = 4 * _ERROR_BODY_CHARS  # read before cutting, so a key near the cut is still redacted whole
_PATHS = {"completions": "completions", "chat": "chat/completions"}
_YEAR_S = 365 * 86400.0

Transport = Literal["auto", "httpx", "aiohttp"]


class StreamingClient(httpx.AsyncClient):
    """An httpx client that knows the deadlines its requests are held to (`send_request` reads them)."""

    def __init__(self, *, deadlines: Deadlines, **options: Any) -> None:
        super().__init__(**options)
        self.deadlines = deadlines


def make_http_client(
    base_url: str,
    *,
    concurrency: int,
    api_key: KeyLike,
    deadlines: Deadlines | None = None,
    timeout_s: float | None = None,
    trust_env: bool = False,
    transport: Transport = "auto",
    tls: TlsPolicy | None = None,
) -> StreamingClient:
    """An HTTP/1.1 client whose keep-alive pool holds one connection per concurrent request.

    Its requests are held to `deadlines` (default `Deadlines()`), each capped at `timeout_s` when
    given (a tool that wants one bound). The transport enforces only the connect deadline; it has
    no read, write or pool timeout of its own, which would fire with a misleading kind before the
    request's first-byte, stall or total deadline (`send_request` enforces those).
    `transport`: "aiohttp" runs the httpx API over aiohttp (package `httpx-aiohttp`), which reads
    streams at about 2.5x the events per CPU second of httpx's own stack; "auto" uses it when it
    is installed. Proxy settings from the environment are ignored unless `trust_env`: a proxy in
    the path would be measured as part of the server. HTTPS is verified as `tls` says (default:
    the system's CAs).
    """
    limits_s = deadlines or Deadlines()
    if timeout_s is not None:
        limits_s = limits_s.capped(timeout_s)
    size = max(1, concurrency)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=60.0)
    verify = (tls or SYSTEM).ssl_context()
    options: dict[str, Any] = {
        "base_url": normalize_base_url(base_url),
        "headers": bearer_headers(api_key) or None,
        # httpx-aiohttp maps connect to aiohttp's sock_connect, read to sock_read, pool to connect.
        "timeout": httpx.Timeout(connect=None if math.isinf(limits_s.connect_s) else limits_s.connect_s,
                                 read=None, write=None, pool=None),
        "trust_env": trust_env,
        "follow_redirects": False,
        "deadlines": limits_s,
    }
    if transport == "aiohttp" or (transport == "auto" and AiohttpTransport is not None):
        if AiohttpTransport is None:
            raise RuntimeError("transport='aiohttp' needs the package httpx-aiohttp")
        return StreamingClient(transport=AiohttpTransport(verify=verify, limits=limits, trust_env=trust_env),
                               **options)
    if transport not in ("auto", "httpx"):
        raise ValueError(f"unknown transport {transport!r}")
    _preload_async_backend()
    return StreamingClient(limits=limits, verify=verify, **options)


def _preload_async_backend() -> None:
    """Import what httpcore and anyio otherwise import lazily inside the first request.

    Left lazy, ~20 ms of imports land between the first `t_send` and its first token.
    """
    for module in ("anyio._backends._asyncio", "httpcore._backends.anyio"):
        try:
            importlib.import_module(module)
        except ImportError:  # a layout change in those packages costs one slow request, no more
            pass


def build_request_body(spec: RequestSpec, *, continuous_usage: bool = False) -> dict[str, Any]:
    """The JSON body of a streamed completions or chat request for `spec`."""
    body: dict[str, Any] = {"model": spec.model}
    if spec.api == "completions":
        if spec.prompt is None:
            raise ValueError(f"request {spec.index}: a completions request needs a prompt")
        body["prompt"] = spec.prompt
    elif spec.api == "chat":
        if spec.messages is None:
            raise ValueError(f"request {spec.index}: a chat request needs messages")
        body["messages"] = [dict(message) for message in spec.messages]
    else:
        raise ValueError(f"request {spec.index}: unknown api {spec.api!r}")
    body["max_tokens"] = spec.max_tokens
    body["temperature"] = 0.0
    body["stream"] = True
    stream_options: dict[str, Any] = {"include_usage": True}
    if continuous_usage:
        stream_options["continuous_usage_stats"] = True
    body["stream_options"] = stream_options
    if spec.force_output_len:
        body["ignore_eos"] = True
        body["min_tokens"] = spec.max_tokens
    _merge(body, spec.extra_body)
    return body


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    """Recursive dict update: `extra_body={"stream_options": {...}}` adds to the options."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merged = dict(into[key])
            _merge(merged, value)
            into[key] = merged
        else:
            into[key] = value


async def send_request(
    http: httpx.AsyncClient,
    spec: RequestSpec,
    *,
    request_id: str,
    t_queued: int,
    count_tokens: Callable[[str], int] | None = None,
    continuous_usage: bool = False,
    deadlines: Deadlines | None = None,
    on_start: Callable[[RequestRecord], None] | None = None,
) -> RequestRecord:
    """Send `spec` on `http` (from `make_http_client`), read its stream, return the record.

    `deadlines` (default: the client's) bound the first byte of the body, the gaps between body
    bytes and the whole request; the kind of a breach says which one. `on_start` receives the
    record as soon as it exists; it is filled in place while the stream is read, which lets an
    interim look count the tokens of requests still in flight.
    Never raises except `asyncio.CancelledError`, which is let through so callers can stop a run.
    """
    record = RequestRecord(
        index=spec.index,
        request_id=request_id,
        api=spec.api,
        warmup=spec.warmup,
        input_len=spec.input_len,
        max_tokens=spec.max_tokens,
        forced=spec.force_output_len,
        t_queued=t_queued,
    )
    interp = StreamInterpreter()
    if on_start is not None:
        on_start(record)
    limits_s = deadlines or getattr(http, "deadlines", None) or Deadlines()
    watch = Watchdog(limits_s)
    try:
        body = json.dumps(build_request_body(spec, continuous_usage=continuous_usage)).encode()
        request = http.build_request(
            "POST",
            _PATHS[spec.api],
            content=body,
            headers={"content-type": "application/json", "accept": "text/event-stream", "x-request-id": request_id},
        )
        async with asyncio.timeout(None) as scope:
            watch.arm(scope)
            try:
                await _exchange(http, request, record, interp, watch)
            finally:
                watch.disarm()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record
        kind, detail = watch.breach(record) if watch.fired else _classify(exc, limits_s)
        _transport_failure(record, interp, kind, detail)
    if record.t_end is None:
        record.t_end = perf_counter_ns()
    try:
        _finalize(record, interp, count_tokens)
    except Exception as exc:  # noqa: BLE001 - a bug: the record says so rather than the run dying
        record.success = False
        record.error_kind = "client"
        record.error_detail = f"finalizing the record: {_describe(exc)}"
    if record.error_detail:  # a server may echo the key in an error body, an error event or a message
        record.error_detail = redact(record.error_detail, [_key_of(http)])
    return record


class Watchdog:
    """Holds one request to its first-byte, stall and total deadlines with one timer.

    Reads only store the arrival time of the latest body bytes (`last_byte`). The timer is set no
    later than the earliest deadline that could pass (at most one stall deadline ahead); when it
    goes off it checks which deadline really passed, and either cancels the request through its
    `asyncio.timeout` scope (noting which one in `fired`) or sets itself again. A stream that keeps
    flowing costs one timer callback per stall deadline, whatever its event rate.
    """

    __slots__ = ("deadlines", "fired", "last_byte", "t_start", "_handle", "_loop", "_scope")

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.t_start = 0
        self.last_byte: int | None = None  # perf_counter_ns of the latest body bytes
        self.fired: tuple[str, int] | None = None  # (kind, perf_counter_ns) once a deadline passed
        self._scope: asyncio.Timeout | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, scope: asyncio.Timeout) -> None:
        """Start the clock (just before `t_send`) and set the timer for the first deadline."""
        self._scope = scope
        self._loop = asyncio.get_running_loop()
        self.t_start = perf_counter_ns()
        self._set(self.t_start)

    def disarm(self) -> None:
        """Stop the timer (the request is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def next_deadline(self) -> tuple[str, int]:
        """The kind and time (perf_counter_ns) of the deadline that passes first from now on."""
        total = self.t_start + _ns(self.deadlines.total_s)
        if self.last_byte is None:
            kind, due = "first_byte_timeout", self.t_start + _ns(self.deadlines.first_byte_s)
        else:
            kind, due = "stall", self.last_byte + _ns(self.deadlines.stall_s)
        return ("timeout", total) if total <= due else (kind, due)

    def _set(self, now: int) -> None:
        # Never later than a stall deadline could fall: a byte arriving from now on moves the
        # deadline to its arrival + stall_s, and the timer is not touched when bytes arrive.
        assert self._loop is not None
        _, due = self.next_deadline()
        due = min(due, now + _ns(self.deadlines.stall_s))
        self._handle = self._loop.call_later(max(0, due - now) / 1e9, self._check)

    def _check(self) -> None:
        now = perf_counter_ns()
        kind, due = self.next_deadline()
        if now < due:  # bytes arrived meanwhile: wait for the deadline they moved
            self._set(now)
            return
        self._handle = None
        self.fired = (kind, now)
        assert self._scope is not None and self._loop is not None
        self._scope.reschedule(self._loop.time())  # cancels the request now; it leaves as TimeoutError

    def breach(self, record: RequestRecord) -> tuple[str, str]:
        """The error kind of the deadline that fired, and a detail with its limit and the wait."""
        assert self.fired is not None
        kind, at = self.fired
        d = self.deadlines
        if kind == "timeout":
            waited = (at - self.t_start) / 1e9
            return kind, f"still running {waited:.2f} s after it was sent (total deadline {d.total_s:g} s)"
        if kind == "stall":
            waited = (at - (self.last_byte or self.t_start)) / 1e9
            return kind, (f"no byte for {waited:.2f} s after {len(record.event_times)} token event(s) "
                          f"(stall deadline {d.stall_s:g} s)")
        waited = (at - self.t_start) / 1e9
        headers = (f"headers after {(record.t_headers - record.t_send) / 1e9:.2f} s" if record.t_headers
                   else "no complete headers either")
        return kind, (f"no byte of the response body {waited:.2f} s after it was sent, {headers} "
                      f"(first-byte deadline {d.first_byte_s:g} s)")


def _ns(seconds: float) -> int:
    """Seconds as nanoseconds, an unbounded (inf) deadline as a year."""
    return int(min(seconds, _YEAR_S) * 1e9)


def _key_of(http: httpx.AsyncClient) -> str | None:
    """The credential the client sends, to redact wherever a server echoes it."""
    return authorization_token(http.headers.get("authorization"))


def status_kind(status: int) -> str:
    """The error kind of a non-200 answer: rate_limited (429), http_4xx, else http_5xx."""
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "http_4xx"
    return "http_5xx"


def retry_after_seconds(value: str | None, now: float | None = None) -> int | None:
    """A `Retry-After` header in seconds: delta-seconds as given, an HTTP date as the seconds from
    `now` (epoch seconds, default the current time) to it, never negative; None when absent or
    unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0, math.ceil(when.timestamp() - (time.time() if now is None else now)))


async def _exchange(http: httpx.AsyncClient, request: httpx.Request, record: RequestRecord,
                    interp: StreamInterpreter, watch: Watchdog) -> None:
    """Write the request and consume the response, filling `record` and `interp` as bytes arrive."""
    record.t_send = perf_counter_ns()
    response = await http.send(request, stream=True)
    try:
        record.t_headers = perf_counter_ns()
        record.status = response.status_code
        if response.status_code != 200:
            _non_200_answer(record, response)  # its kind holds even if reading the body fails
            record.error_detail = f"{record.error_detail}: {_cut(await _read_head(response, watch), request)}"
            return
        parser = SSEParser()
        head = bytearray()  # the start of the body, kept to explain an empty stream
        reader = _aiohttp_body(response)
        if reader is not None:
            if not await _read_aiohttp_stream(reader, parser, head, record, interp, watch):
                return
        else:
            async for chunk in response.aiter_bytes():
                now = perf_counter_ns()
                watch.last_byte = now
                if len(head) < _HEAD_BYTES:
                    head += chunk[:_HEAD_BYTES]
                if not _consume(parser.feed(chunk), now, record, interp):
                    return  # a failed stream is abandoned at once
        _consume(parser.finish(), perf_counter_ns(), record, interp)
        if record.t_end is None:
            record.t_end = perf_counter_ns()
        if not record.event_times and interp.error_kind is None:
            content_type = response.headers.get("content-type", "?")
            record.error_detail = f"content-type {content_type}; body starts {_cut(repr(bytes(head)), request)}"
    finally:
        await response.aclose()


def _aiohttp_body(response: httpx.Response) -> Any | None:
    """The aiohttp stream under an httpx-aiohttp response whose body needs no decoding, else None.

    Read directly, a network read skips the four async generators httpx nests around it (raw
    bytes, chunker, decoder, transport stream): about a fifth of the client's CPU per streamed
    token when every read carries one token. httpx still sends the request and owns the response.
    """
    if aiohttp is None:
        return None
    stream = getattr(response.stream, "_stream", None)  # httpx's wrapper around the transport's stream
    inner = getattr(stream, "_aiohttp_response", None)
    if not isinstance(inner, aiohttp.ClientResponse):
        return None
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None  # httpx decodes compressed bodies; leave them to it
    return inner.content


async def _read_aiohttp_stream(reader: Any, parser: SSEParser, head: bytearray, record: RequestRecord,
                               interp: StreamInterpreter, watch: Watchdog) -> bool:
    """Read an aiohttp body stream to its end (True), or until the stream failed (False).

    Same time stamps as the httpx path: one per read, as soon as the read returns.
    """
    readany = reader.readany
    while True:
        chunk = await readany()
        if not chunk:
            return True
        now = perf_counter_ns()
        watch.last_byte = now
        if len(head) < _HEAD_BYTES:
            head += chunk[:_HEAD_BYTES]
        if not _consume(parser.feed(chunk), now, record, interp):
            return False  # a failed stream is abandoned at once


def _non_200_answer(record: RequestRecord, response: httpx.Response) -> None:
    """Record a non-200 answer: its kind and status, and for a 429 its Retry-After."""
    status = response.status_code
    record.error_kind = status_kind(status)
    record.error_detail = f"HTTP {status}"
    if status == 429:
        raw = response.headers.get("retry-after")
        record.retry_after_s = retry_after_seconds(raw)
        if raw is not None:
            record.error_detail += f", Retry-After {raw!r} ({record.retry_after_s} s)"


def _cut(text: str, request: httpx.Request) -> str:
    """The start of an error body, the key redacted before cutting (a cut key would escape redaction)."""
    return redact(text, [authorization_token(request.headers.get("authorization"))])[:_ERROR_BODY_CHARS]


def _consume(events: list[SSEEvent], now: int, record: RequestRecord, interp: StreamInterpreter) -> bool:
    """Record the token events among `events` as arrived at `now`; False once the stream failed."""
    for event in events:
        token = interp.feed_data(event.data) if event.event == "message" else interp.feed_event(event)
        if token is not None:
            record.event_times.append(now)
            record.event_tokens.append(token.tokens)
            record.event_reasoning.append(token.reasoning)
            if record.t_first_answer is None and not token.reasoning:
                record.t_first_answer = now
        elif interp.error_kind is not None:
            record.t_end = now
            return False
        elif interp.done and record.t_end is None:
            record.t_end = now
    return True


async def _read_head(response: httpx.Response, watch: Watchdog) -> str:
    """The first characters of an error body, without reading a huge body to the end."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        watch.last_byte = perf_counter_ns()
        data += chunk
        if len(data) >= _HEAD_BYTES:
            break
    return data[:_HEAD_BYTES].decode("utf-8", "replace")


def _classify(exc: BaseException, deadlines: Deadlines) -> tuple[str, str]:
    """The error kind and a short detail for an exception raised while sending or reading."""
    # httpx-aiohttp re-raises aiohttp errors as httpx ones, some of them misleadingly (a server
    # disconnect becomes ConnectTimeout): judge by the original error when there is one.
    cause = exc.__cause__
    if aiohttp is not None and isinstance(cause, aiohttp.ClientError):
        original: BaseException = cause
    else:
        original = exc
    detail = _describe(original)
    connect_late = f"could not connect within the connect deadline of {deadlines.connect_s:g} s: {detail}"
    if aiohttp is not None and isinstance(original, aiohttp.ClientError):
        if isinstance(original, aiohttp.ConnectionTimeoutError):
            return "connect_timeout", connect_late
        if isinstance(original, asyncio.TimeoutError):
            return "timeout", detail
        if isinstance(original, aiohttp.ClientConnectorError):  # refused, unreachable, TLS handshake
            return "refused", detail
        if isinstance(original, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
            return "reset", detail
        return "client", detail
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect_timeout", connect_late
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", detail
    if isinstance(exc, httpx.ConnectError):
        return "refused", detail
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return "reset", detail
    return "client", detail  # a bug or an unforeseen case: kept on the record, never hidden


def _describe(exc: BaseException) -> str:
    """`Type: message`, with the underlying OS error when the message is empty."""
    text = str(exc)
    if not text:
        inner = exc.__cause__ or exc.__context__
        while inner is not None and not str(inner) and (inner.__cause__ or inner.__context__):
            inner = inner.__cause__ or inner.__context__
        if inner is not None and str(inner):
            text = f"{type(inner).__name__}: {inner}"
    return f"{type(exc).__name__}: {text}"[:_ERROR_BODY_CHARS] if text else type(exc).__name__


def _transport_failure(record: RequestRecord, interp: StreamInterpreter, kind: str, detail: str) -> None:
    """Record a transport failure, unless the stream had already been completed by `[DONE]`."""
    if interp.done or record.error_kind is not None:
        return
    record.error_kind = kind
    record.error_detail = detail


def _finalize(record: RequestRecord, interp: StreamInterpreter, count_tokens: Callable[[str], int] | None) -> None:
    """Copy the interpreter's outcome to the record and decide success (METRICS.md)."""
    record.text = interp.text
    record.reasoning_text = interp.reasoning_text
    record.prompt_tokens = interp.prompt_tokens
    record.completion_tokens = interp.completion_tokens
    record.usage_per_chunk = interp.usage_per_chunk
    record.finish_reason = interp.finish_reason
    record.done_seen = interp.done
    if record.event_times:
        record.t_first_token = record.event_times[0]
        record.t_last_token = record.event_times[-1]
    if record.completion_tokens is None:
        # No usage from the server: N is re-counted (or, lacking a tokenizer, the event tokens).
        record.approximate = True
        generated = record.reasoning_text + record.text
        if count_tokens is not None and generated:
            try:
                record.completion_tokens = count_tokens(generated)
            except Exception as exc:  # noqa: BLE001 - the record stays usable with the event count
                record.error_detail = record.error_detail or f"count_tokens failed: {_describe(exc)}"
    if record.error_kind is None and interp.error_kind is not None:
        record.error_kind = interp.error_kind
        record.error_detail = interp.error_detail
    if record.error_kind is None:
        if not record.event_times:
            record.error_kind = "empty_stream"
            record.error_detail = record.error_detail or "no token event"
        elif not (interp.done or interp.finish_reason):
            record.error_kind = "truncated"
            record.error_detail = "the stream ended without [DONE] and without a finish_reason"
    record.success = record.error_kind is None
    if record.success:
        record.error_detail = None
