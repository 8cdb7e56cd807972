"""Training pipeline: log dialects, a live follower, convergence and speed criteria.

Public API: ``load_records``, ``evaluate_entry``, ``follow_and_evaluate`` and their types; the
gate's entry (cases and run) is ``pytest_deepseek.training.gate``.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "DIALECT_NAMES": "dialects",
    "evaluate_entry": "evaluate",
    "follow_and_evaluate": "live",
    "load_records": "loader",
    "Event": "records",
    "Record": "records",
    "TrainingLog": "records",
    "TrainingLogError": "records",
    "TrainingResult": "result",
    "read_entry": "spec",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
