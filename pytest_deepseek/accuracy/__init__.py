"""Accuracy pipeline: evaluation backends (run or ingest) and the pass rule.

Public API: `run_backend` (evaluate on an endpoint, get a results folder), `read_results` (score
records from any tool's results folder), `judge` (one thresholds entry against its record),
`bundled_datasets_dir` (tiny datasets in each backend's layout).
"""

from __future__ import annotations

from .backends import BACKENDS, Backend, get_backend
from .bundled import answer_key_path, bundled_datasets_dir
from .generation import R1_RECIPE, GenerationError, GenerationSettings, generation_settings
from .read import ResultsError, detect_backend, read_results
from .records import ItemResult, ScoreRecord
from .rule import ERROR, FAIL, PASS, AccuracyCheck, judge
from .run import INSTALL, BackendError, BackendMissing, run_backend

__all__ = [
    "BACKENDS",
    "ERROR",
    "FAIL",
    "INSTALL",
    "PASS",
    "R1_RECIPE",
    "AccuracyCheck",
    "Backend",
    "BackendError",
    "BackendMissing",
    "GenerationError",
    "GenerationSettings",
    "ItemResult",
    "ResultsError",
    "ScoreRecord",
    "answer_key_path",
    "bundled_datasets_dir",
    "detect_backend",
    "generation_settings",
    "get_backend",
    "judge",
    "read_results",
    "run_backend",
]
