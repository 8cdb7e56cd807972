"""Result readers: one per tool, and `read_results`, which tells them apart by folder layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..records import ScoreRecord
from ..spec import EVALSCOPE, LM_EVAL, OPENCOMPASS
from . import evalscope, lm_eval, opencompass
from .common import ResultsError

READERS: dict[str, Callable[[Path], list[ScoreRecord]]] = {
    EVALSCOPE: evalscope.read,
    OPENCOMPASS: opencompass.read,
    LM_EVAL: lm_eval.read,
}


def detect_backend(folder: Path) -> str:
    """Which tool wrote `folder`: evalscope `reports/`, OpenCompass `summary/*.csv`, lm-eval `results_*.json`."""
    if evalscope.find_run(folder) is not None:
        return EVALSCOPE
    if opencompass.find_summary(folder) is not None:
        return OPENCOMPASS
    if lm_eval.find_results(folder) is not None:
        return LM_EVAL
    raise ResultsError(
        f"{folder}: no evaluation results found (looked for evalscope reports/<model>/<dataset>.json, "
        "OpenCompass summary/summary_<timestamp>.csv, lm-eval results_<timestamp>.json)"
    )


def read_results(folder: Path, *, backend: str | None = None) -> list[ScoreRecord]:
    """Score records, one per dataset, from a results folder; the tool is detected unless named."""
    folder = Path(folder)
    if not folder.exists():
        raise ResultsError(f"results folder {folder} does not exist")
    name = backend or detect_backend(folder)
    if name not in READERS:
        raise ResultsError(f"unknown backend {name!r}; known: {', '.join(READERS)}")
    return READERS[name](folder)


__all__ = ["READERS", "ResultsError", "detect_backend", "read_results"]
