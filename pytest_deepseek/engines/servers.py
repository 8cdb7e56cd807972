"""Start and stop a real inference server (vLLM CPU or transformers serve) on 127.0.0.1.

Ready means `/health` answers 200 AND one real completion streams back: a server can report
healthy and then fail every request (unsupported head sizes, for one). The server's output goes
to a log file that is kept; every failure message ends with its tail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..serving.endpoint_api import health
from ..serving.records import RequestSpec
from ..serving.single import send_one
from .venvs import tail

VLLM_MODEL_NAME = "tiny-deepseek-v3"
HUB_REPO_ID = "pytest-deepseek/tiny-deepseek-v3"
STOP_GRACE_S = 15.0
SERVER_NICENESS = 10
LOG_TAIL_LINES = 60


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message carries the tail of its log."""


@dataclass(frozen=True)
class ServerCommand:
    """How to start one server: argv, environment additions, and what requests must name as `model`."""

    kind: str
    argv: tuple[str, ...]
    env: dict[str, str]
    port: int
    model: str
    probe_api: str = "completions"
    niceness: int = 0
    cpus: frozenset[int] | None = None  # CPU affinity of the server and its children


@dataclass
class RunningServer:
    """A started server process; `stop()` ends it (and its children) by its process group id."""

    command: ServerCommand
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_s: float = 0.0
    exit_code: int | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, `http://127.0.0.1:PORT/v1`."""
        return f"http://127.0.0.1:{self.command.port}/v1"

    @property
    def model(self) -> str:
        """The `model` requests must send."""
        return self.command.model

    @property
    def pid(self) -> int:
        """Process id of the server (also its process group id)."""
        return self.process.pid

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server log."""
        return tail(self.log_path, lines)

    def stop(self) -> int:
        """SIGTERM to the server's process group, SIGKILL after a grace period; returns the exit code."""
        if self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Engine worker processes may outlive the API server; they share its process group.
        _signal_group(self.process.pid, signal.SIGKILL)
        self.exit_code = int(self.process.returncode)
        return self.exit_code


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _placement(niceness: int, cpus: frozenset[int] | None) -> Callable[[], None] | None:
    if not niceness and cpus is None:
        return None

    def apply() -> None:
        if niceness:
            os.nice(niceness)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return apply


def split_cpus() -> tuple[frozenset[int], frozenset[int]]:
    """(server CPUs, client CPUs): the last usable CPU for the load generator, the others for the server.

    On a small machine a server that may use every core starves the client's event loop, and the
    workload contract then (rightly) calls the run client-bound. With one CPU both share it.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return frozenset(cpus), frozenset(cpus)
    return frozenset(cpus[:-1]), frozenset(cpus[-1:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vllm_command(python: Path, model_dir: Path, work_dir: Path, port: int, served_name: str = VLLM_MODEL_NAME,
                 cpus: frozenset[int] | None = None) -> ServerCommand:
    """vLLM's OpenAI server (CPU build) for `model_dir`; caches go under `work_dir`.

    `cpus` confines the server (API process and engine) to those CPUs, its OpenMP threads bound to them.
    """
    # The package's `vllm` console script looks for metadata of a package named `vllm`: use the module.
    argv = (str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "2048",
            "--enforce-eager", "-O0")
    env = {
        "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CACHE_ROOT": str(work_dir / "vllm-cache"), "XDG_CACHE_HOME": str(work_dir / "xdg-cache"),
    }
    if cpus is not None:
        # vLLM's automatic binding would reserve one of these CPUs for its API process; bind all instead.
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in sorted(cpus))
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    # A lower priority as well: the load generator's event loop must never wait behind the server.
    return ServerCommand("vllm", argv, env, port, served_name, niceness=SERVER_NICENESS, cpus=cpus)


def hub_cache_layout(model_dir: Path, hub_dir: Path, repo_id: str = HUB_REPO_ID) -> str:
    """Expose `model_dir` as `repo_id` in a Hugging Face hub cache at `hub_dir` (links, no copies).

    transformers serve lists only hub-cache models at /v1/models; a model served by path is never listed.
    """
    repo = hub_dir / ("models--" + repo_id.replace("/", "--"))
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for item in model_dir.iterdir():
        link = snapshot / item.name
        if item.is_file() and not item.name.startswith(".") and not link.exists():
            link.symlink_to(item.resolve())
    return repo_id


def transformers_serve_command(python: Path, model_dir: Path, work_dir: Path, port: int,
                               by_path: bool = False) -> ServerCommand:
    """`transformers serve` pinned to the tiny model, on CPU.

    By default the model is exposed in a hub cache under `work_dir` so that /v1/models lists it;
    `by_path=True` pins the folder path itself (then the request's `model` must be that exact path).
    """
    hub = work_dir / "hf-home" / "hub"
    hub.mkdir(parents=True, exist_ok=True)  # without it, /v1/models answers 500
    model = str(model_dir) if by_path else hub_cache_layout(model_dir, hub)
    argv = (str(python.parent / "transformers"), "serve", model, "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu")
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(work_dir / "hf-home"), "HF_HUB_CACHE": str(hub),
           "DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return ServerCommand("transformers-serve", argv, env, port, model)


def start_server(command: ServerCommand, log_path: Path, timeout_s: float = 300.0) -> RunningServer:
    """Start `command`, wait until ready (health, then one real completion), or raise with the log tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(command.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(command.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **command.env}, start_new_session=True,
                                   preexec_fn=_placement(command.niceness, command.cpus))
    server = RunningServer(command, process, log_path)
    try:
        _wait_ready(server, started + timeout_s)
    except BaseException:
        server.stop()
        raise
    server.ready_s = time.monotonic() - started
    return server


def _wait_ready(server: RunningServer, deadline: float) -> None:
    while not health(server.base_url, timeout=2.0):
        if server.process.poll() is not None:
            raise _start_error(server, f"exited with code {server.process.returncode} before /health answered")
        if time.monotonic() > deadline:
            raise _start_error(server, "did not answer /health in time")
        time.sleep(0.5)
    spec = RequestSpec(index=0, api=server.command.probe_api, model=server.model, max_tokens=4,  # type: ignore[arg-type]
                       force_output_len=False, prompt="Hello" if server.command.probe_api == "completions" else None,
                       messages=({"role": "user", "content": "Hello"},) if server.command.probe_api == "chat" else None)
    record = send_one(server.base_url, spec, timeout_s=max(10.0, deadline - time.monotonic()))
    if not record.success or not record.event_times:
        raise _start_error(server, f"answered /health but the first completion failed: "
                           f"{record.error_kind}: {record.error_detail}")


def _start_error(server: RunningServer, what: str) -> ServerStartError:
    return ServerStartError(f"{server.command.kind} server (pid {server.pid}) {what}; "
                            f"last lines of {server.log_path}:\n{server.log_tail()}")
