"""Small helpers shared by the result readers."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..records import ItemResult


class ResultsError(Exception):
    """A results folder cannot be read; the message says what was looked for."""


def read_json(path: Path) -> Any:
    """A JSON file, with the path in the error when it is broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file, blank lines skipped."""
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ResultsError(f"{path}:{line_no}: not JSON: {exc}") from exc


def percent(fraction: float) -> float:
    """A fraction as percent, rounded to kill binary noise (0.6667 -> 66.67, not 66.66999)."""
    return round(fraction * 100.0, 6)


def average_items(pairs: Iterable[tuple[str, float, bool]]) -> tuple[ItemResult, ...]:
    """Per-item results from `(id, score, errored)` samples; repeats of one id are averaged."""
    scores: dict[str, list[float]] = defaultdict(list)
    errored: dict[str, bool] = defaultdict(bool)
    for item_id, score, err in pairs:
        scores[item_id].append(score)
        errored[item_id] = errored[item_id] or err
    return tuple(ItemResult(k, sum(v) / len(v), errored[k]) for k, v in scores.items())


def latest(paths: Iterable[Path]) -> Path | None:
    """The path whose name sorts last (tools put sortable timestamps in names)."""
    ordered = sorted(paths, key=lambda p: p.name)
    return ordered[-1] if ordered else None
