"""Tiny local OpenAI-like servers for the secret and TLS tests, and a self-signed certificate.

`KeyEchoServer(accept=False)` rejects every key the way careless servers do: HTTP 401 with the
Authorization header (and every other request header) echoed in the body, or a 200 stream whose
error event names the key. `accept=True` serves a short valid stream, for TLS checks.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL = "echo-model"


def _stream(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _good_stream(chat: bool) -> bytes:
    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "finish_reason": finish}
        choice.update({"delta": {"content": text}} if chat else {"text": text})
        return {"id": "x", "model": MODEL, "choices": [choice]}

    usage = {"id": "x", "model": MODEL, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2,
                                                                 "total_tokens": 7}}
    return _stream([chunk("Hello", None), chunk(" world", "stop"), usage])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reject(self) -> None:
        auth = self.headers.get("authorization", "")
        token = auth.partition(" ")[2]
        body = {"error": {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request_error",
                          "code": "invalid_api_key", "request_headers": dict(self.headers.items()),
                          "key": token, "key_base64": base64.b64encode(token.encode()).decode()}}
        self._send(401, json.dumps(body).encode())

    def _read_body(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.seen.append(self.headers.get("authorization", ""))
        if self.path.rstrip("/") == "/v1/models" and (self.server.accept or self.server.list_models):
            self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())
        else:
            self._reject()

    def do_POST(self) -> None:  # noqa: N802
        self._read_body()
        auth = self.headers.get("authorization", "")
        self.server.seen.append(auth)
        generation = self.path.endswith("/completions")
        if generation and self.server.accept:
            self._send(200, _good_stream(self.path.endswith("/chat/completions")), "text/event-stream")
            return
        with self.server.lock:
            self.server.count += 1
            turn = self.server.count
        if generation and turn % 2:
            error = {"error": {"message": f"the key {auth} was revoked", "code": 401}}
            self._send(200, _stream([error]), "text/event-stream")
        else:
            self._reject()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, accept: bool, list_models: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.accept = accept
        self.list_models = list_models
        self.seen: list[str] = []
        self.count = 0
        self.lock = threading.Lock()


class KeyEchoServer:
    """A local server on 127.0.0.1 (HTTPS when given a certificate); `seen` holds the Authorization
    headers it received."""

    def __init__(self, *, accept: bool = False, list_models: bool = True, cert: "Certificate | None" = None) -> None:
        self._server = _Server(accept=accept, list_models=list_models)
        scheme = "http"
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert.cert, cert.key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[str]:
        return self._server.seen

    def __enter__(self) -> "KeyEchoServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost: `cert` is also its own CA bundle."""

    cert: Path
    key: Path


def self_signed_certificate(folder: Path) -> Certificate:
    """Make one with the openssl command line tool (part of every machine the tests run on)."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the TLS tests need the openssl command line tool (apt-get install openssl)"
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return Certificate(cert, key)
