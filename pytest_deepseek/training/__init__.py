"""Training pipeline: log dialects, a live follower, convergence and speed criteria.

Public API: ``load_records``, ``evaluate_entry``, ``follow_and_evaluate`` and their types; the
gate's entry (cases and run) is ``pytest_deepseek.training.gate``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: the plugin imports spec modules of this package at pytest start-up,
# and the package's heavy parts (numpy, readers, runners) must not come with them.
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
