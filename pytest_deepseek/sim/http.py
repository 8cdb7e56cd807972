"""A small HTTP/1.1 server on asyncio Protocols: keep-alive, Content-Length bodies, chunked responses.

One request at a time per connection (pipelined requests wait in the buffer). The handler gets
the parsed request and the connection, and answers with `send_response` (a whole body) or with
`start_chunked` / `write_chunk` / `end_chunked` (a stream); `abort` drops the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

log = logging.getLogger("pytest_deepseek.sim.http")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
SERVER_NAME = "pytest-deepseek-sim"
_INTERNAL_ERROR = b'{"error": {"message": "internal error", "type": "InternalServerError", "code": 500}}'


@dataclass
class Request:
    """A parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    version: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    keep_alive: bool


Handler = Callable[[Request, "Connection"], Awaitable[None]]


class HttpError(Exception):
    """A request that cannot be parsed; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


def _header_block(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [_status_line(status), f"server: {SERVER_NAME}\r\n".encode()]
    lines += [f"{name}: {value}\r\n".encode("latin-1") for name, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


class Connection(asyncio.Protocol):
    """One client connection: parses requests and gives the handler ways to answer."""

    def __init__(self, handler: Handler, on_open: Callable[[Connection], None] | None = None,
                 on_close: Callable[[Connection], None] | None = None) -> None:
        self._handler = handler
        self._on_open = on_open
        self._on_close_cb = on_close
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy = False  # a request is being answered
        self._keep_alive = True
        self._continue_sent = False
        self.closed = False
        self.on_lost: Callable[[], None] | None = None  # set by the handler of the current request
        self._task: asyncio.Task[None] | None = None
        self._started = False  # the response in progress has sent its headers
        self._chunked = True  # False for HTTP/1.0 clients: the stream ends when the connection closes
        self._eof = False  # the client closed its sending side

    # asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._on_open:
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next_request()

    def eof_received(self) -> bool | None:
        self._eof = True
        if not self._busy:
            self.abort()
        return True  # keep the write side open until the response in progress is done

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        callback, self.on_lost = self.on_lost, None
        if callback is not None:
            callback()
        if self._on_close_cb:
            self._on_close_cb(self)

    # parsing ------------------------------------------------------------------------------------
    def _next_request(self) -> None:
        if self.closed:
            return
        try:
            request = self._parse()
        except HttpError as exc:
            self._keep_alive = False
            body = {"error": {"message": str(exc), "type": "BadRequestError", "param": None, "code": exc.status}}
            self.send_response(exc.status, json.dumps(body).encode(), content_type="application/json")
            return
        if request is None:
            return
        self._busy = True
        self._continue_sent = False
        self._keep_alive = request.keep_alive
        self._chunked = request.version == "HTTP/1.1"
        self._task = asyncio.ensure_future(self._run(request))

    def _parse(self) -> Request | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise HttpError(431, "request headers too large")
            return None
        head = bytes(self._buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HttpError(400, "malformed header line")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise HttpError(411, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")
        body_start = end + 4
        if len(self._buffer) - body_start < length:
            if headers.get("expect", "").lower() == "100-continue" and not self._continue_sent:
                self._continue_sent = True
                if self.transport is not None:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        body = bytes(self._buffer[body_start : body_start + length])
        del self._buffer[: body_start + length]
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        path, _, raw_query = target.partition("?")
        query = dict(urllib.parse.parse_qsl(raw_query)) if raw_query else {}
        return Request(method.upper(), path, query, version, headers, body, keep_alive)

    async def _run(self, request: Request) -> None:
        try:
            await self._handler(request, self)
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.path)
            if self._busy and not self._started:
                self.send_response(500, _INTERNAL_ERROR, content_type="application/json")
            else:
                self.abort()

    def _finish(self) -> None:
        self._busy = False
        self._started = False
        self.on_lost = None
        if not self._keep_alive or self._eof:
            if self.transport is not None:
                self.transport.close()
            return
        if self._buffer:
            asyncio.get_running_loop().call_soon(self._next_request)

    # answering ----------------------------------------------------------------------------------
    def send_response(self, status: int, body: bytes, *, content_type: str = "application/json",
                      headers: list[tuple[str, str]] | None = None) -> None:
        """Answer with a complete body (Content-Length) and end the request."""
        if self.closed or self.transport is None:
            return
        all_headers = [("content-type", content_type), ("content-length", str(len(body)))]
        if not self._keep_alive:
            all_headers.append(("connection", "close"))
        self.transport.write(_header_block(status, all_headers + (headers or [])) + body)
        self._finish()

    def start_chunked(self, status: int, *, content_type: str, headers: list[tuple[str, str]] | None = None) -> None:
        """Send the headers of a streamed response: chunked, or close-delimited for HTTP/1.0."""
        if self.closed or self.transport is None:
            return
        self._started = True
        all_headers = [("content-type", content_type), ("cache-control", "no-cache")]
        if self._chunked:
            all_headers.append(("transfer-encoding", "chunked"))
        else:
            self._keep_alive = False
        if not self._keep_alive:
            all_headers.append(("connection", "close"))
        self.transport.write(_header_block(status, all_headers + (headers or [])))

    def write_chunk(self, data: bytes) -> None:
        """Write one piece of a streamed response (no-op once the connection is closed)."""
        if data and not self.closed and self.transport is not None:
            self.transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)

    def end_chunked(self, last: bytes = b"") -> None:
        """Write `last`, end the streamed response (terminating chunk or close) and the request."""
        if self.closed or self.transport is None:
            return
        if not self._chunked:
            self.transport.write(last)
        elif last:
            self.transport.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(last), last))
        else:
            self.transport.write(b"0\r\n\r\n")
        self._finish()

    def abort(self) -> None:
        """Close the connection now, dropping the response in progress."""
        if self.transport is not None and not self.closed:
            self.transport.close()
            self.closed = True
            callback, self.on_lost = self.on_lost, None
            if callback is not None:
                callback()
