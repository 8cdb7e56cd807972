"""Small helpers shared by the result readers."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..records import ItemResult


class ResultsError(Exception):
    """A results folder cannot be read; the message says what was looked for."""


def read_text(path: Path) -> str:
    """A file's text, with the path in the error when it cannot be read or is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc


def _decode(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ResultsError(f"{where}: not JSON: {exc}") from exc
    except RecursionError as exc:
        raise ResultsError(f"{where}: JSON nested too deeply") from exc


def read_json(path: Path) -> Any:
    """A JSON file, with the path in the error when it is broken."""
    return _decode(read_text(path), f"cannot read {path}")


def read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects of a JSON-lines file as `(where, object)`, `where` being `path:line`; blank lines skipped."""
    try:
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    where = f"{path}:{line_no}"
                    row = _decode(line, where)
                    if not isinstance(row, dict):
                        raise ResultsError(f"{where}: expected an object, got {_shown(row)}")
                    yield where, row
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_mapping(value: Any, where: str) -> dict[str, Any]:
    """`value` as a JSON object (null: empty); a ResultsError naming `where` when it is something else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResultsError(f"{where}: expected an object, got {_shown(value)}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """`value` as a JSON array (null: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ResultsError(f"{where}: expected a list, got {_shown(value)}")
    return value


def as_number(value: Any, where: str) -> float:
    """`value` as a finite float (a JSON number, not true/false, NaN or infinite)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise ResultsError(f"{where}: expected a finite number, got {_shown(value)}")


def as_count(value: Any, where: str) -> int | None:
    """`value` as a whole number >= 0 (null: None)."""
    if value is None:
        return None
    number = as_number(value, where)
    if number < 0 or not number.is_integer():
        raise ResultsError(f"{where}: expected a whole number >= 0, got {_shown(value)}")
    return int(value)


def as_label(value: Any, where: str) -> str | None:
    """A version, hash or name: text, or a number written as text (null: None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ResultsError(f"{where}: expected text, got {_shown(value)}")


def dig(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...`, or None as soon as a level is missing or not an object (optional metadata)."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


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
