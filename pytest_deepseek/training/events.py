"""Crash messages and other lines that end a run, recognised in any dialect."""

from __future__ import annotations

import re

from .records import Event

# Cheap substring screen first; the regex only runs on lines that pass it.
_SCREEN = ("Error", "Traceback", "error", "fault", "Killed", "core dumped", "out of memory", "Exception")
_CRASH = re.compile(
    r"Traceback \(most recent call last\)"
    r"|^\s*(?:[\w.]+\.)?\w*(?:Error|Exception)(?::|$)"
    r"|CUDA out of memory|OutOfMemoryError|NCCL error|ChildFailedError"
    r"|Segmentation fault|core dumped|^\s*Killed\b|ERROR: .*exited with"
    r"|\bEL\d{4}\b|Ascend Error|\bERR\d{5}\b"
)


def crash_event(line: str, file: str, lineno: int, rank: int | None) -> Event | None:
    """An Event when ``line`` is a crash message (traceback, OOM, NCCL/Ascend error), else None."""
    for s in _SCREEN:
        if s in line:
            break
    else:
        return None
    if _CRASH.search(line):
        return Event("crash", file, lineno, line, rank)
    return None
