"""Where a training log lives: files, directories, globs, per-rank files and rotations."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from .records import TrainingLogError

PathsLike = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]

_RANK_IN_PATH = re.compile(r"(?:rank|worker)[_-]?(\d+)", re.IGNORECASE)
_ROTATED = re.compile(r"^(.*?)\.(\d+)$")
_MM_TS = re.compile(r"^\d{8}_\d{6}$")
_TEXT_SUFFIXES = (".log", ".txt", ".out", ".jsonl", ".json", ".err")


@dataclass(frozen=True)
class Source:
    """One file to read. ``role`` is "records" or "events" (crash messages only)."""

    path: str
    role: str = "records"
    rank: int | None = None


def rank_from_path(path: str) -> int | None:
    """The rank a per-rank file name carries (``rank_3/info.log``, ``worker_3.log``)."""
    tail = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
    m = _RANK_IN_PATH.search(tail)
    return int(m.group(1)) if m else None


def _rotation_key(path: str) -> tuple[str, int]:
    m = _ROTATED.match(path)
    if m and not m.group(1).endswith(("/", os.sep)):
        return m.group(1), -int(m.group(2))  # info.log.5 is older than info.log.1
    return path, 0


def _mmengine_dir(d: Path) -> list[Source]:
    ts_dirs = [d] if (d / "vis_data").is_dir() else sorted(p for p in d.iterdir() if p.is_dir() and _MM_TS.match(p.name))
    out: list[Source] = []
    for ts in ts_dirs:
        json_files = sorted(p for p in (ts / "vis_data").glob("*.json") if p.name != "scalars.json") \
            if (ts / "vis_data").is_dir() else []
        text_logs = sorted(ts.glob(f"{ts.name}.log")) or sorted(ts.glob("*.log"))
        if json_files:
            out.extend(Source(str(p)) for p in json_files)
            out.extend(Source(str(p), "events") for p in text_logs)
        else:
            out.extend(Source(str(p)) for p in text_logs)
    return out


def _dir_sources(d: Path) -> list[Source]:
    found = _mmengine_dir(d)
    if found:
        return found
    for base in (d / "output" / "msrun_log", d / "msrun_log"):
        workers = sorted(base.glob("worker_*.log")) if base.is_dir() else []
        if workers:
            return [Source(str(p), rank=rank_from_path(str(p))) for p in workers]
    infos = sorted(glob.glob(str(d / "**" / "rank_*" / "info.log*"), recursive=True), key=_rotation_key)
    if infos:
        return [Source(p, rank=rank_from_path(p)) for p in infos]
    if (d / "trainer_log.jsonl").is_file():
        return [Source(str(d / "trainer_log.jsonl"))]
    if (d / "trainer_state.json").is_file():
        return [Source(str(d / "trainer_state.json"))]
    ckpts = sorted(d.glob("checkpoint-*/trainer_state.json"),
                   key=lambda p: int(p.parent.name.split("-")[-1]) if p.parent.name.split("-")[-1].isdigit() else -1)
    if ckpts:
        return [Source(str(ckpts[-1]))]
    files = sorted((str(p) for p in d.iterdir() if p.is_file() and
                    (p.suffix in _TEXT_SUFFIXES or _ROTATED.match(p.name))), key=_rotation_key)
    return [Source(p, rank=rank_from_path(p)) for p in files]


def resolve_sources(paths: PathsLike) -> list[Source]:
    """Expand files, directories and globs into the files to read, oldest rotation first."""
    items: list[str] = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if not items:
        raise TrainingLogError("no training log path given")
    out: list[Source] = []
    for item in items:
        expanded = sorted(glob.glob(item, recursive=True), key=_rotation_key) if any(c in item for c in "*?[") else [item]
        if not expanded:
            raise TrainingLogError(f"no training log matches {item!r}")
        for p in expanded:
            path = Path(p)
            if path.is_dir():
                got = _dir_sources(path)
                if not got:
                    raise TrainingLogError(f"no training log file found in directory {p}")
                out.extend(got)
            elif path.is_file():
                out.append(Source(p, rank=rank_from_path(p)))
            else:
                raise TrainingLogError(f"training log not found: {p}")
    seen: set[str] = set()
    unique = []
    for s in out:
        if s.path not in seen:
            seen.add(s.path)
            unique.append(s)
    return unique
