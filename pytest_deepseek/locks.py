"""The one inter-process file lock of the project (perf runs, once-per-run results, engine builds).

`filelock` (kept by the Hugging Face and evalscope stacks) is portable: `fcntl` does not exist on
Windows, and importing it at plugin load broke pytest there for everyone with the plugin installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created with its folder if missing) for the block.

    Blocks until the lock is free: every holder releases it when its block ends, or when it dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield
