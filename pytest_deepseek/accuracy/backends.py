"""The backend interface: each tool is a `run(request) -> results folder` and a `read(folder) -> records`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .read import READERS
from .records import ScoreRecord
from .run import INSTALL, RUNNERS, RunRequest


@dataclass(frozen=True)
class Backend:
    """One evaluation tool: how to run it, how to read what it wrote, how to install it."""

    name: str
    run: Callable[[RunRequest], Path]
    read: Callable[[Path], list[ScoreRecord]]
    install: str


BACKENDS: dict[str, Backend] = {name: Backend(name, RUNNERS[name], READERS[name], INSTALL[name]) for name in RUNNERS}


def get_backend(name: str) -> Backend:
    """The backend called `name` (evalscope, opencompass, lm-eval)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown accuracy backend {name!r}; known: {', '.join(BACKENDS)}") from None
