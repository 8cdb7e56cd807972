"""Training pipeline: log dialects, a live follower, convergence and speed criteria.

Public API: ``load_records``, ``evaluate_entry``, ``follow_and_evaluate`` and their types.
"""

from .dialects import DIALECT_NAMES
from .evaluate import evaluate_entry
from .live import follow_and_evaluate
from .loader import load_records
from .records import Event, Record, TrainingLog, TrainingLogError
from .result import Check, TrainingResult
from .spec import read_entry

__all__ = [
    "DIALECT_NAMES", "Check", "Event", "Record", "TrainingLog", "TrainingLogError", "TrainingResult",
    "evaluate_entry", "follow_and_evaluate", "load_records", "read_entry",
]
