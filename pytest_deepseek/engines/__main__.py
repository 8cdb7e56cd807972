"""`python -m pytest_deepseek.engines vllm|transformers-serve [--port P]`: a real server to test against.

Builds (or reuses) the engine venv and the tiny DeepSeek-V3, starts the server on 127.0.0.1, prints
the endpoint and the pytest command to run against it, and stays up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

from .cache import CACHE_ENV, cache_root
from .launch import KINDS, launch
from .profiles import profile_for
from .servers import ServerStartError, split_cpus
from .tiny_model import TinyModelError
from .venvs import VenvError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_deepseek.engines", description="Start a real inference server serving a tiny DeepSeek-V3 on 127.0.0.1.")
    parser.add_argument("kind", choices=KINDS, help="which real server to start")
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--work-dir", type=Path, default=None, help="server log and caches (default: a temp dir)")
    parser.add_argument("--by-path", action="store_true",
                        help="transformers serve: pin the model folder path instead of a hub id")
    return parser


def pytest_commands(kind: str, base_url: str, model: str, thresholds: Path,
                    client_cpus: frozenset[int] | None) -> list[str]:
    """Commands that run the endpoint suite and the CI serving profile against the started server.

    On a small machine the client goes on the CPUs the server was kept off (`taskset`).
    """
    prefix = ["taskset", "-c", ",".join(str(c) for c in sorted(client_cpus))] if client_cpus else []
    endpoint = [*prefix, "pytest", "suites/test_endpoint.py", f"--endpoint={base_url}", f"--deepseek-model={model}"]
    profile, _ = profile_for(kind, model)
    serving = [*prefix, "pytest", "suites/test_serving.py", f"--endpoint={base_url}", f"--deepseek-thresholds={thresholds}",
               f"--deepseek-profile={profile}"]
    return [shlex.join(endpoint), shlex.join(serving)]


def main(argv: list[str] | None = None) -> int:
    """Start the server, print how to use it, wait for Ctrl-C, stop it."""
    args = _parser().parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix=f"pytest-deepseek-{args.kind}-"))
    print(f"engine cache: {cache_root()} (set ${CACHE_ENV} to move it)", flush=True)
    server_cpus, client_cpus = split_cpus() if args.kind == "vllm" else (None, None)
    try:
        server = launch(args.kind, work_dir, cache_root(), port=args.port, by_path=args.by_path, cpus=server_cpus,
                        log=lambda line: print(line, flush=True))
    except (ServerStartError, VenvError, TinyModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    thresholds = work_dir / "thresholds.yaml"
    thresholds.write_text(profile_for(args.kind, server.model)[1])
    commands = "\n  ".join(pytest_commands(args.kind, server.base_url, server.model, thresholds, client_cpus))
    print(f"\nendpoint: {server.base_url}\nmodel:    {server.model}\nlog:      {server.log_path}\n"
          f"\nrun (from the repository root):\n  {commands}\n\nCtrl-C stops the server.", flush=True)
    try:
        while server.process.poll() is None:
            time.sleep(1)
        print(f"the server exited with code {server.process.returncode}; last lines of its log:\n"
              f"{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the server", flush=True)
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
