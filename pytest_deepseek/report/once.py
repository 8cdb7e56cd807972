"""Compute something once per run, shared by tests and by xdist workers (file lock + cached JSON)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..locks import exclusive


def once_per_run(directory: Path, stem: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return `directory/stem.json` if a process already computed it, else compute and store it.

    The lock makes concurrent callers wait for the first one instead of computing twice (a live
    training log followed twice, or an evaluation run twice against the same endpoint).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cached = directory / f"{stem}.json"
    with exclusive(directory / f".{stem}.lock"):
        if cached.exists():
            data: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
            return data
        data = compute()
        tmp = directory / f".{stem}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, cached)  # whole or absent: a run killed while writing it leaves no half file
        return data
