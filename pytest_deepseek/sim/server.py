"""The simulator as a server: in the current event loop, or in a background thread.

The server also plays the `refused` fault: it stops listening for a while (new connections are
refused, open ones are closed), then listens again on the same port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from types import TracebackType

from .app import SimApp
from .config import SimConfig
from .http import Connection
from .urls import parse_sim_url

READY_PREFIX = "pytest-deepseek sim listening on "  # + base URL: the line the launcher waits for
RELISTEN_RETRY_S = 0.05  # the port is taken by someone else: try again after this long
RELISTEN_GIVE_UP_S = 30.0

log = logging.getLogger("pytest_deepseek.sim.server")


def resolve_config(url_or_config: str | SimConfig) -> SimConfig:
    """A config from a `sim://` URL, a bare preset name, or a config."""
    if isinstance(url_or_config, SimConfig):
        return url_or_config
    text = url_or_config if "://" in url_or_config else f"sim://{url_or_config}"
    return parse_sim_url(text)


class SimServer:
    """One simulated engine listening on a TCP port of the running event loop."""

    def __init__(self, config: SimConfig, *, truth_path: Path | None = None) -> None:
        self.config = config
        self.truth_path = truth_path
        self.app = SimApp(config, truth_path=truth_path)
        self.app.on_refused = self.refuse
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[Connection] = set()
        self._relisten: asyncio.Task[None] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ending in /v1."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """The served model name."""
        return self.config.model

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening (port 0: any free port, then `self.port` says which)."""
        await self.app.start()
        try:
            self._server = await self._listen(host, port)
        except BaseException:
            await self.app.stop()
            raise
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    async def _listen(self, host: str, port: int) -> asyncio.base_events.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: Connection(self.app.handle, on_open=self._connections.add, on_close=self._connections.discard),
            host, port, reuse_address=True, backlog=1024)

    @property
    def open_connections(self) -> int:
        """Client connections currently open."""
        return len(self._connections)

    @property
    def listening(self) -> bool:
        """False while stopped or refusing connections."""
        return self._server is not None

    def refuse(self, seconds: float) -> None:
        """Stop listening and close every open connection; listen again on the same port after `seconds`."""
        if self._server is None or self._relisten is not None:
            return
        self._server.close()
        self._server = None
        for conn in list(self._connections):
            conn.abort()
        log.info("refusing connections for %.3g s", seconds)
        self._relisten = asyncio.ensure_future(self._listen_again(seconds))

    async def _listen_again(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + RELISTEN_GIVE_UP_S
        while True:
            try:
                self._server = await self._listen(self.host, self.port)
                break
            except OSError as exc:
                if loop.time() > give_up:
                    log.error("cannot listen again on %s:%d: %s", self.host, self.port, exc)
                    break
                await asyncio.sleep(RELISTEN_RETRY_S)
        self._relisten = None

    async def stop(self) -> None:
        """Stop listening, drop open connections, flush the truth file."""
        if self._relisten is not None:
            self._relisten.cancel()
            self._relisten = None
        if self._server is not None:
            self._server.close()
            for conn in list(self._connections):
                conn.abort()
            await self._server.wait_closed()
            self._server = None
        else:  # stopped while refusing: the connections are already closed
            for conn in list(self._connections):
                conn.abort()
        await self.app.stop()

    async def __aenter__(self) -> SimServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ThreadedSim:
    """A `SimServer` on its own event loop in a daemon thread (for synchronous callers and tests).

    It shares the interpreter lock with the caller, so a busy caller thread can delay emissions
    by a switch interval (5 ms); timing-sensitive work belongs in `start_sim`'s subprocess.
    """

    def __init__(self, config: SimConfig, *, truth_path: Path | None = None, port: int = 0) -> None:
        self.config = config
        self.truth_path = truth_path
        self._loop = asyncio.new_event_loop()
        self._server = SimServer(config, truth_path=truth_path)
        self._thread = threading.Thread(target=self._loop.run_forever, name="pytest-deepseek-sim", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._server.start(port=port), self._loop).result(timeout=30)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            raise

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ending in /v1."""
        return self._server.base_url

    @property
    def model(self) -> str:
        """The served model name."""
        return self.config.model

    @property
    def app(self) -> SimApp:
        """The application state (counters, engine), for inspection."""
        return self._server.app

    @property
    def server(self) -> SimServer:
        """The server itself (listening state), for inspection."""
        return self._server

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return self._server.port

    def stop(self) -> None:
        """Stop the server and its thread; flushes the truth file."""
        if not self._loop.is_closed() and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> ThreadedSim:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
