"""Where engine venvs and built models are cached (builds hold `locks.exclusive` on their target)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DEEPSEEK_ENGINE_CACHE"


def cache_root() -> Path:
    """`$DEEPSEEK_ENGINE_CACHE`, else `~/.cache/pytest-deepseek/engines`."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "pytest-deepseek" / "engines"
    return root.resolve()
