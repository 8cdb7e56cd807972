"""The streaming client: sends one request to an OpenAI-compatible server and times its stream.

`send_request` never raises (cancellation aside): every outcome is a `RequestRecord`, and a failed
request carries an `error_kind` from `records.ERROR_KINDS`. Time stamps follow METRICS.md: the
arrival time of a token event is taken once per network read, as soon as the read returns.
The API key never reaches a record: an error body or message that echoes it is redacted.
"""

from __future__ import annotations

import asyncio
import importlib
import json
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
from .records import RequestRecord, RequestSpec
from .sse import SSEEvent, SSEParser, StreamInterpreter

_ERROR_BODY_CHARS = 500
_HEAD_BYTES = 4 * _ERROR_BODY_CHARS  # read before cutting, so a key near the cut is still redacted whole
_PATHS = {"completions": "completions", "chat": "chat/completions"}

Transport = Literal["auto", "httpx", "aiohttp"]


def make_http_client(
    base_url: str,
    *,
    concurrency: int,
    api_key: KeyLike,
    timeout_s: float,
    trust_env: bool = False,
    transport: Transport = "auto",
    tls: TlsPolicy | None = None,
) -> httpx.AsyncClient:
    """An HTTP/1.1 client whose keep-alive pool holds one connection per concurrent request.

    `timeout_s` bounds connect, each read, each write and the wait for a pooled connection.
    `transport`: "aiohttp" runs the httpx API over aiohttp (package `httpx-aiohttp`), which reads
    streams at about 2.5x the events per CPU second of httpx's own stack; "auto" uses it when it
    is installed. Proxy settings from the environment are ignored unless `trust_env`: a proxy in
    the path would be measured as part of the server. HTTPS is verified as `tls` says (default:
    the system's CAs).
    """
    size = max(1, concurrency)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=60.0)
    verify = (tls or SYSTEM).ssl_context()
    options: dict[str, Any] = {
        "base_url": normalize_base_url(base_url),
        "headers": bearer_headers(api_key) or None,
        "timeout": httpx.Timeout(timeout_s),
        "trust_env": trust_env,
        "follow_redirects": False,
    }
    if transport == "aiohttp" or (transport == "auto" and AiohttpTransport is not None):
        if AiohttpTransport is None:
            raise RuntimeError("transport='aiohttp' needs the package httpx-aiohttp")
        return httpx.AsyncClient(transport=AiohttpTransport(verify=verify, limits=limits, trust_env=trust_env),
                                 **options)
    if transport not in ("auto", "httpx"):
        raise ValueError(f"unknown transport {transport!r}")
    _preload_async_backend()
    return httpx.AsyncClient(limits=limits, verify=verify, **options)


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
    deadline_s: float | None = None,
    on_start: Callable[[RequestRecord], None] | None = None,
) -> RequestRecord:
    """Send `spec` on `http` (from `make_http_client`), read its stream, return the record.

    `deadline_s`, when given, bounds the whole request (on top of the client's per-read timeout).
    `on_start` receives the record as soon as it exists; it is filled in place while the stream is
    read, which lets an interim look count the tokens of requests still in flight.
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
    try:
        body = json.dumps(build_request_body(spec, continuous_usage=continuous_usage)).encode()
        request = http.build_request(
            "POST",
            _PATHS[spec.api],
            content=body,
            headers={"content-type": "application/json", "accept": "text/event-stream", "x-request-id": request_id},
        )
        if deadline_s is None:
            await _exchange(http, request, record, interp)
        else:
            await asyncio.wait_for(_exchange(http, request, record, interp), deadline_s)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record
        kind, detail = _classify(exc, deadline_s)
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


def _key_of(http: httpx.AsyncClient) -> str | None:
    """The credential the client sends, to redact wherever a server echoes it."""
    return authorization_token(http.headers.get("authorization"))


async def _exchange(
    http: httpx.AsyncClient, request: httpx.Request, record: RequestRecord, interp: StreamInterpreter
) -> None:
    """Write the request and consume the response, filling `record` and `interp` as bytes arrive."""
    record.t_send = perf_counter_ns()
    response = await http.send(request, stream=True)
    try:
        record.t_headers = perf_counter_ns()
        record.status = response.status_code
        if response.status_code != 200:
            record.error_kind = "http_status"
            record.error_detail = f"HTTP {response.status_code}"
            record.error_detail += f": {_cut(await _read_head(response), request)}"
            return
        parser = SSEParser()
        head = bytearray()  # the start of the body, kept to explain an empty stream
        async for chunk in response.aiter_bytes():
            now = perf_counter_ns()
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


def _cut(text: str, request: httpx.Request) -> str:
    """The start of an error body, the key redacted before cutting (a cut key would escape redaction)."""
    return redact(text, [authorization_token(request.headers.get("authorization"))])[:_ERROR_BODY_CHARS]


def _consume(events: list[SSEEvent], now: int, record: RequestRecord, interp: StreamInterpreter) -> bool:
    """Record the token events among `events` as arrived at `now`; False once the stream failed."""
    feed = interp.feed_event
    for event in events:
        token = feed(event)
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


async def _read_head(response: httpx.Response) -> str:
    """The first characters of an error body, without reading a huge body to the end."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _HEAD_BYTES:
            break
    return data[:_HEAD_BYTES].decode("utf-8", "replace")


def _classify(exc: BaseException, deadline_s: float | None) -> tuple[str, str]:
    """The error kind and a short detail for an exception raised while sending or reading."""
    # httpx-aiohttp re-raises aiohttp errors as httpx ones, some of them misleadingly (a server
    # disconnect becomes ConnectTimeout): judge by the original error when there is one.
    cause = exc.__cause__
    if aiohttp is not None and isinstance(cause, aiohttp.ClientError):
        original: BaseException = cause
    else:
        original = exc
    detail = _describe(original)
    if aiohttp is not None and isinstance(original, aiohttp.ClientError):
        if isinstance(original, asyncio.TimeoutError):
            return "timeout", detail
        if isinstance(original, aiohttp.ClientConnectorError):
            return "connect", detail
        if isinstance(original, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
            return "reset", detail
        return "client", detail
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", detail
    if isinstance(exc, httpx.ConnectError):
        return "connect", detail
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return "reset", detail
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout", f"deadline of {deadline_s} s exceeded" if deadline_s is not None else detail
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
            record.error_kind = "truncated_stream"
            record.error_detail = "the stream ended without [DONE] and without a finish_reason"
    record.success = record.error_kind is None
    if record.success:
        record.error_detail = None
