"""`python -m pytest_deepseek.sim`: run the simulator alone.

Prints `pytest-deepseek sim listening on http://HOST:PORT/v1` once it accepts connections (the
launcher reads the port from that line); logs go to stderr. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from .config import SimConfig, SimConfigError, apply_overrides
from .content import ContentError
from .presets import get_preset, preset_names
from .server import READY_PREFIX, SimServer


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m pytest_deepseek.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="deepseek-v3", help=f"one of: {', '.join(preset_names())}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--truth", type=Path, default=None, help="append ground-truth JSON lines here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset value (repeatable), e.g. --set max_num_seqs=8")
    parser.add_argument("--config-json", default=None, help="a whole config as JSON (used by the launcher)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started this one dies (used by the launcher)")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The config named by --preset/--set or --config-json."""
    config = SimConfig.from_json_dict(json.loads(args.config_json)) if args.config_json else get_preset(args.preset)
    overrides: dict[str, str] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SimConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    return apply_overrides(config, overrides) if overrides else config


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    # A killed test run must not leave a server behind: when the parent dies we are re-parented.
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        await asyncio.sleep(1.0)


async def serve(config: SimConfig, host: str, port: int, truth: Path | None, exit_with_parent: bool = False) -> None:
    """Run until SIGTERM or SIGINT (or, with `exit_with_parent`, until the parent process dies)."""
    server = SimServer(config, truth_path=truth)
    await server.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.ensure_future(_watch_parent(os.getppid(), stop)) if exit_with_parent else None
    print(f"{READY_PREFIX}{server.base_url}", flush=True)
    logging.getLogger("pytest_deepseek.sim").info("preset %s, model %s", config.preset, config.model)
    try:
        await stop.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        asyncio.run(serve(config, args.host, args.port, args.truth, args.exit_with_parent))
    except (SimConfigError, ContentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
