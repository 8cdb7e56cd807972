"""Start the simulator as a subprocess (the default) or in a thread of this process."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from .config import SimConfig
from .server import READY_PREFIX, ThreadedSim, resolve_config

STOP_GRACE_S = 5.0


class SimStartError(RuntimeError):
    """The simulator did not become ready; the message carries the tail of its log."""


class RunningSim:
    """A simulator subprocess on 127.0.0.1. Stop it with `stop()` or use it as a context manager."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, config: SimConfig,
                 truth_path: Path | None, log_path: Path | None) -> None:
        self.process = process
        self.base_url = base_url
        self.config = config
        self.truth_path = truth_path
        self.log_path = log_path
        self._drain: threading.Thread | None = None

    @property
    def model(self) -> str:
        """The served model name."""
        return self.config.model

    @property
    def pid(self) -> int:
        """Process id of the simulator."""
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM (the child flushes its truth file), SIGKILL after 5 s; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release()
        return int(self.process.returncode)

    def kill(self) -> int:
        """SIGKILL (no truth flush, like a crashed server) and wait for the exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._release()
        return int(self.process.returncode)

    def _release(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=1)
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    def __enter__(self) -> RunningSim:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _read_ready_line(stream: IO[bytes], process: subprocess.Popen[bytes], deadline: float) -> str | None:
    """The child's ready line, or None when it exited or the deadline passed."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        pending = b""
        while time.monotonic() < deadline:
            if not selector.select(timeout=min(0.2, max(0.0, deadline - time.monotonic()))):
                if process.poll() is not None:
                    return None
                continue
            data = os.read(stream.fileno(), 4096)
            if not data:
                return None
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if text.startswith(READY_PREFIX):
                    return text[len(READY_PREFIX):]
    return None


def _wait_healthy(base_url: str, deadline: float) -> bool:
    health = base_url.removesuffix("/v1") + "/health"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def _log_tail(log_path: Path | None) -> str:
    if log_path is None or not log_path.exists():
        return "(no log: pass log_path to keep the simulator's stderr)"
    return log_path.read_text(encoding="utf-8", errors="replace")[-2000:]


def start_sim(url_or_config: str | SimConfig, *, truth_path: Path | None = None, log_path: Path | None = None,
              ready_timeout_s: float = 20, port: int | None = None) -> RunningSim:
    """Start `python -m pytest_deepseek.sim` on 127.0.0.1 and wait until it is healthy.

    `url_or_config` is a `sim://` URL, a preset name, or a SimConfig. `port` None or 0 picks a
    free port; a fixed port lets a test start a new simulator where a killed one listened. The
    child's stderr goes to `log_path` (discarded when None). Raises SimConfigError for a bad URL,
    SimStartError when the child does not become ready within `ready_timeout_s` (a port in use
    included).
    """
    config = resolve_config(url_or_config)
    cmd = [sys.executable, "-m", "pytest_deepseek.sim", "--exit-with-parent", "--host", "127.0.0.1",
           "--port", str(port or 0), "--config-json", json.dumps(config.to_json_dict())]
    if truth_path is not None:
        cmd += ["--truth", str(truth_path)]
    log_handle = log_path.open("ab") if log_path is not None else None
    try:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_handle or subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL)
    finally:
        if log_handle is not None:
            log_handle.close()  # the child has its own descriptor
    assert process.stdout is not None
    deadline = time.monotonic() + ready_timeout_s
    base_url = _read_ready_line(process.stdout, process, deadline)
    if base_url is None or not _wait_healthy(base_url, deadline):
        sim = RunningSim(process, base_url or "", config, truth_path, log_path)
        sim.stop()
        raise SimStartError(
            f"the simulator ({config.preset}) was not ready within {ready_timeout_s} s "
            f"(exit code {process.returncode}); log tail:\n{_log_tail(log_path)}")
    sim = RunningSim(process, base_url, config, truth_path, log_path)
    # Keep reading the child's stdout so it can never block on a full pipe.
    sim._drain = threading.Thread(target=_discard, args=(process.stdout,), daemon=True)
    sim._drain.start()
    return sim


def _discard(stream: IO[bytes]) -> None:
    try:
        while os.read(stream.fileno(), 65536):
            pass
    except (OSError, ValueError):
        pass


def start_sim_thread(url_or_config: str | SimConfig, *, truth_path: Path | None = None,
                     port: int | None = None) -> ThreadedSim:
    """The in-process variant: the same server on an event loop in a daemon thread of this process."""
    return ThreadedSim(resolve_config(url_or_config), truth_path=truth_path, port=port or 0)
