"""Where engine venvs and built models are cached, and a lock so two runs never build the same thing."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "DEEPSEEK_ENGINE_CACHE"


def cache_root() -> Path:
    """`$DEEPSEEK_ENGINE_CACHE`, else `~/.cache/pytest-deepseek/engines`."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "pytest-deepseek" / "engines"
    return root.resolve()


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
