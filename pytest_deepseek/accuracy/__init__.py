"""Accuracy pipeline: evaluation backends (run or ingest) and the pass rule.

Public API: `run_backend` (evaluate on an endpoint, get a results folder), `read_results` (score
records from any tool's results folder), `judge` (one thresholds entry against its record),
`bundled_datasets_dir` (tiny datasets in each backend's layout). The gate's entry is `gate.py`;
the thresholds schema, backend and dataset names are in `spec.py`.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "bundled_datasets_dir": "bundled",
    "R1_RECIPE": "generation",
    "GenerationError": "generation",
    "GenerationSettings": "generation",
    "generation_settings": "generation",
    "ResultsError": "read",
    "detect_backend": "read",
    "read_results": "read",
    "ItemResult": "records",
    "ScoreRecord": "records",
    "AccuracyCheck": "rule",
    "judge": "rule",
    "BackendError": "run",
    "BackendMissing": "run",
    "run_backend": "run",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
