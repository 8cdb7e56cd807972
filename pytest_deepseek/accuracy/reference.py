"""Per-item reference results for the paired test (`reference_results:` in thresholds.yaml).

The path is either a results folder of any backend (the reference run itself: the record with the
same dataset name is used, with its config version) or a JSON-lines file of `{"id": ..., "correct":
true|false}` (or `"score": 0..1`) per item, ids as the readers write them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .read import ResultsError, read_results
from .records import ItemResult


@dataclass(frozen=True)
class Reference:
    """Reference items and what is known of the run that produced them."""

    items: tuple[ItemResult, ...]
    config_version: str | None = None
    config_hash: str | None = None
    source: str = ""


def load_reference(path: Path, dataset: str) -> Reference:
    """The reference items for `dataset` from a results folder or a JSON-lines file."""
    if not path.exists():
        raise ResultsError(f"reference_results {path} does not exist")
    if path.is_file() and path.suffix == ".jsonl":
        return Reference(_read_items(path), source=str(path))
    for record in read_results(path):
        if record.dataset == dataset:
            if record.items is None:
                raise ResultsError(f"reference_results {path}: no per-item results for {dataset}")
            return Reference(record.items, record.config_version, record.config_hash, record.source)
    raise ResultsError(f"reference_results {path}: no results for {dataset}")


def _read_items(path: Path) -> tuple[ItemResult, ...]:
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            value = row["correct"] if "correct" in row else row["score"]
            items.append(ItemResult(str(row["id"]), float(value)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ResultsError(f"{path}:{line_no}: expected {{\"id\", \"correct\"}}: {exc}") from exc
    return tuple(items)
