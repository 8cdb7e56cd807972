"""A one-host Ray cluster on loopback for tests and benchmarks (`ray start --head`, stopped by its id).

Every Ray process binds 127.0.0.1 (Ray's own switch keeps loopback addresses; without it Ray swaps
in the host's network address). The processes share the session of the `ray start` that
launched them in its own session (Ray's workers take process groups of their own, in that session),
so stopping the cluster signals the processes of that session and nothing else (never `ray stop`,
which ends every Ray process of the machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from pytest_deepseek.serving.ray_link import LOOPBACK_SWITCH

START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class LocalRayCluster:
    """`ray start --head` on 127.0.0.1 with `num_cpus` CPUs; `address` is its GCS HOST:PORT."""

    def __init__(self, num_cpus: int = 2, object_store_bytes: int = 100 * 1024 * 1024) -> None:
        self.num_cpus = num_cpus
        self.object_store_bytes = object_store_bytes
        self.port = free_port()
        self.client_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_address = f"ray://127.0.0.1:{self.client_port}"
        self.sid: int | None = None  # the session of `ray start` and everything it started
        self.start_s: float | None = None  # how long `ray start` took
        self._temp = Path(tempfile.mkdtemp(prefix="dsray-"))

    @staticmethod
    def environment() -> dict[str, str]:
        """The environment the cluster and its drivers need to stay on loopback."""
        return {**os.environ, LOOPBACK_SWITCH: "0", "RAY_USAGE_STATS_ENABLED": "0"}

    def start(self) -> "LocalRayCluster":
        ray = Path(sys.executable).with_name("ray")
        command = [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                   f"--ray-client-server-port={self.client_port}", f"--num-cpus={self.num_cpus}",
                   f"--object-store-memory={self.object_store_bytes}", "--include-dashboard=false",
                   "--disable-usage-stats", f"--temp-dir={self._temp}"]
        t0 = time.perf_counter()
        process = subprocess.Popen(command, env=self.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True, text=True)
        self.sid = process.pid
        try:
            out, _ = process.communicate(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"ray start took over {START_TIMEOUT_S:.0f} s") from None
        if process.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({process.returncode}):\n{out[-3000:]}")
        self.start_s = time.perf_counter() - t0
        return self

    def members(self) -> list[int]:
        """The cluster's live processes."""
        return [] if self.sid is None else session_members(self.sid)

    def stop(self, grace_s: float = 2.0) -> None:
        """SIGTERM the cluster's processes, SIGKILL those left after `grace_s`."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            for pid in self.members():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            while self.members() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not self.members():
                break
        shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> "LocalRayCluster":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
