"""A small HTTP/1.1 server on asyncio Protocols: keep-alive, Content-Length bodies, chunked responses.

One request at a time per connection (pipelined requests wait in the buffer). The handler gets
the parsed request and the connection, and answers with `send_response` (a whole body) or with
`start_chunked` / `write_chunk` / `end_chunked` (a stream); `abort` closes the connection,
`reset` drops it with a TCP reset. `trickle_next_head` makes the next response's status line and
headers go out one byte at a time (what follows them waits until they are all out).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
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
        self.closed_by_server = False  # closed by `abort` / `reset` rather than by the client
        self.on_peer_eof: Callable[[], None] | None = None  # called when the client closes its side mid-response
        self.on_head_sent: Callable[[], None] | None = None  # called once a trickled head is all out
        self._trickle_s: float | None = None  # the next head goes out one byte per this many seconds
        self._held: bytearray | None = None  # bytes written while the head trickles, sent after it
        self._finish_deferred = False  # the response ended while its head was still trickling
        self._trickle_task: asyncio.Task[None] | None = None

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
        elif self.on_peer_eof is not None:
            self.on_peer_eof()
        return True  # keep the write side open until the response in progress is done

    @property
    def peer_closed(self) -> bool:
        """True once the client has closed its sending side (or the whole connection)."""
        return self._eof or self.closed

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_trickle()
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
        if self._held is not None:  # the head is still trickling: end once it is out
            self._finish_deferred = True
            return
        self._trickle_s = None
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
        self._write_head(_header_block(status, all_headers + (headers or [])), body)
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
        self._write_head(_header_block(status, all_headers + (headers or [])))

    def write_chunk(self, data: bytes) -> None:
        """Write one piece of a streamed response (no-op once the connection is closed)."""
        if data and not self.closed and self.transport is not None:
            self._write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)

    def end_chunked(self, last: bytes = b"") -> None:
        """Write `last`, end the streamed response (terminating chunk or close) and the request."""
        if self.closed or self.transport is None:
            return
        if not self._chunked:
            self._write(last)
        elif last:
            self._write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(last), last))
        else:
            self._write(b"0\r\n\r\n")
        self._finish()

    def abort(self) -> None:
        """Close the connection now (FIN once written bytes are out), dropping the response in progress."""
        if self.transport is not None and not self.closed:
            self.transport.close()
            self._closed_here()

    def reset(self) -> None:
        """Drop the connection with a TCP reset (RST); bytes not yet handed to the kernel are lost."""
        if self.transport is None or self.closed:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:  # already gone: closing it is all there is left to do
                pass
        self.transport.abort()
        self._closed_here()

    def _closed_here(self) -> None:
        self.closed = True
        self.closed_by_server = True
        self._stop_trickle()
        callback, self.on_lost = self.on_lost, None
        if callback is not None:
            callback()

    # slow headers -------------------------------------------------------------------------------
    def trickle_next_head(self, interval_s: float) -> None:
        """Send the next response's status line and headers one byte every `interval_s` seconds."""
        self._trickle_s = interval_s

    @property
    def head_trickling(self) -> bool:
        """True while a response head is going out byte by byte."""
        return self._held is not None

    def _write(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            return
        if self._held is not None:
            self._held += data
        else:
            self.transport.write(data)

    def _write_head(self, head: bytes, body: bytes = b"") -> None:
        """Write a response head and what follows it (in one write unless the head trickles)."""
        if self._trickle_s is None:
            self._write(head + body)
            return
        self._held = bytearray(body)
        self._trickle_task = asyncio.ensure_future(self._trickle(head, self._trickle_s))

    async def _trickle(self, head: bytes, interval_s: float) -> None:
        for i in range(len(head)):
            if i:
                await asyncio.sleep(interval_s)
            if self.closed or self.transport is None:
                return
            self.transport.write(head[i : i + 1])
        callback, self.on_head_sent = self.on_head_sent, None
        if callback is not None:
            callback()
        held, self._held = self._held, None
        self._trickle_task = None
        if held and not self.closed:
            self.transport.write(bytes(held))
        if self._finish_deferred:
            self._finish_deferred = False
            self._finish()

    def _stop_trickle(self) -> None:
        task, self._trickle_task = self._trickle_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
