"""Probing an endpoint reads what its server says about itself: its model entry, its version where it
serves one (vLLM `/version`, SGLang `/get_server_info`), the headers naming it. Anything it does not
say, or says too slowly, is absent data, never an error of the run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_deepseek.endpoint import EndpointInfo, probe_endpoint

SENTINEL = "sk-canary-Pr0beK3yNv7xQ2"
MODELS = {"object": "list", "data": [{"id": "tiny", "object": "model", "created": 1718000000, "owned_by": "tinyco",
                                      "root": "/models/tiny-7b", "parent": None, "max_model_len": 2048}]}


@contextmanager
def tiny_server(routes: dict[str, Any], delay_s: float = 0.0) -> Iterator[str]:
    """A server on 127.0.0.1 answering GET `routes` (path -> JSON body) and 404 elsewhere, after
    `delay_s` for any route but the model list; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "tiny-engine/1.2"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-powered-by", "tinyco")
            self.send_header("set-cookie", f"session={SENTINEL}")
            self.send_header("x-echo-authorization", self.headers.get("authorization", ""))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/v1/models":
                self._answer(200, MODELS)
                return
            time.sleep(delay_s)
            if self.path in routes:
                self._answer(200, routes[self.path])
            else:
                self._answer(404, {"detail": "Not Found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", "0"))
            self.rfile.read(length)
            self._answer(404, {"detail": "Not Found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def shows_sentinel(info: EndpointInfo) -> bool:
    text = json.dumps(info.to_json()) + repr(info)
    return SENTINEL in text or SENTINEL[10:] in text


def test_a_server_with_version_says_what_it_runs() -> None:
    with tiny_server({"/version": {"version": "0.8.5"}}) as url:
        info = probe_endpoint(url, model=None, api_key=SENTINEL)
    server = info.server
    assert (server.version, server.version_route) == ("0.8.5", "/version")
    assert (server.model_id, server.model_root, server.model_owned_by) == ("tiny", "/models/tiny-7b", "tinyco")
    assert (server.max_model_len, server.model_created) == (2048, 1718000000)
    assert dict(server.headers) == {"server": "tiny-engine/1.2", "x-powered-by": "tinyco"}
    assert not shows_sentinel(info)
    assert EndpointInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


def test_a_server_without_version_has_none_and_still_opens() -> None:
    with tiny_server({}) as url:
        info = probe_endpoint(url, model="tiny", api_key=None)
    assert info.model == "tiny" and info.server.version is None and info.server.version_route is None
    assert info.server.model_root == "/models/tiny-7b" and dict(info.server.headers)["server"] == "tiny-engine/1.2"


def test_sglang_server_info_gives_only_its_version() -> None:
    server_info = {"model_path": "/models/tiny-7b", "api_key": SENTINEL, "tp_size": 8, "version": "0.4.6.post1"}
    with tiny_server({"/get_server_info": server_info}) as url:
        info = probe_endpoint(url, model="tiny", api_key=SENTINEL)
    assert (info.server.version, info.server.version_route) == ("0.4.6.post1", "/get_server_info")
    assert not shows_sentinel(info)


def test_a_slow_version_route_is_absent_data_within_the_short_timeout() -> None:
    with tiny_server({"/version": {"version": "late"}}, delay_s=3.0) as url:
        started = time.monotonic()
        info = probe_endpoint(url, model="tiny", api_key=None, timeout_s=1.0)
        elapsed = time.monotonic() - started
    assert info.server.version is None and info.server.model_root == "/models/tiny-7b"
    # the tokenize probe and one version route each wait out at most the 1 s timeout; generous for a busy box
    assert elapsed < 6.0
