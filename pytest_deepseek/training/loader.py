"""``load_records``: read finished (or paused) training logs into one TrainingLog."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

from .assemble import Assembler
from .records import TrainingLog, TrainingLogError
from .sources import PathsLike, Source, resolve_sources


def read_complete_text(path: str) -> tuple[str, bool]:
    """The file's text up to its last newline, and whether an unfinished line was left out."""
    with open(path, "rb") as fh:
        data = fh.read()
    cut = data.rfind(b"\n")
    partial = cut != len(data) - 1 and len(data) > 0
    if partial:
        data = data[: cut + 1]
    return data.decode("utf-8", errors="replace"), partial


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while building many acyclic records (it would rescan them all)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _read_all(asm: Assembler, sources: list[Source]) -> list[str]:
    """Feed every source; return the files whose last line was unfinished."""
    partial_files = []
    for src in sources:
        asm.add_file(src.path, src.role, src.rank)
        text, partial = read_complete_text(src.path)
        if partial:
            partial_files.append(src.path)
        if src.role == "records" and asm.feed_whole(src.path, text):
            continue
        if src.role == "records" and asm.dialect is None:
            asm.detect_from(text[:1_000_000].splitlines())
        asm.feed_text(src.path, text)
    return partial_files


def load_records(paths: PathsLike, dialect: str = "auto", *, rank: int | None = None) -> TrainingLog:
    """Parse the log(s) at ``paths`` (file, directory, glob or list) in ``dialect`` ("auto" detects).

    ``rank`` overrides the rank that owns the loss. Raises TrainingLogError for missing files,
    an unrecognisable format (naming the dialects tried and showing the first lines) or a log
    without any record.
    """
    try:
        asm = Assembler(dialect, rank)
    except ValueError as exc:
        raise TrainingLogError(str(exc)) from None
    sources = resolve_sources(paths)
    with _no_cyclic_gc():
        partial_files = _read_all(asm, sources)
        if asm.dialect is None:
            raise asm.detection_error()
        log = asm.snapshot(finishing=True)
    for p in partial_files:
        log.warnings.append(f"{p}: the last line has no newline yet (file still being written?); ignored it")
    if not log.records:
        where = ", ".join(log.files)
        raise TrainingLogError(f"no {log.dialect} training records in {where} "
                               f"({log.total_lines} lines read, {log.corrupt_lines} corrupt)")
    return log
