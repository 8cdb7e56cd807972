"""Typed training records and the parsed log that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class TrainingLogError(Exception):
    """A log that cannot be read: missing, empty, or in no known dialect."""


@dataclass(slots=True)
class Record:
    """One training-iteration record.

    ``metrics`` holds floats keyed by the framework's own names (units as printed, see
    ``TrainingLog.units``) plus canonical aliases such as ``loss`` and ``step_time_s``.
    ``time`` is the wall-clock stamp of the line in seconds when the line carries one (only
    differences between records are meaningful: some consoles omit the year).
    """

    iteration: int
    metrics: dict[str, float]
    rank: int | None = None
    time: float | None = None
    file: str = ""
    lineno: int = 0
    line: str = ""
    epoch: int | None = None

    def quote(self, limit: int = 300) -> str:
        """The record as it was written, with its place: ``file:line: text``."""
        text = self.line if len(self.line) <= limit else self.line[: limit - 3] + "..."
        return f"{self.file}:{self.lineno}: {text}"


@dataclass(slots=True)
class Event:
    """A line that matters without being a record: a crash message, a warning."""

    kind: str
    file: str
    lineno: int
    line: str
    rank: int | None = None

    def quote(self) -> str:
        """The event line with its place."""
        return f"{self.file}:{self.lineno}: {self.line[:300]}"


@dataclass(slots=True)
class TrainingLog:
    """Records of the rank that owns the loss, one per iteration, in iteration order."""

    records: list[Record]
    dialect: str
    rank: int | None
    files: list[str]
    corrupt_lines: int = 0
    corrupt_examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    ranks_seen: list[int] = field(default_factory=list)
    total_lines: int = 0

    def metric_names(self) -> list[str]:
        """Every metric name found in any record, sorted."""
        names: set[str] = set()
        for r in self.records:
            names.update(r.metrics)
        return sorted(names)

    def describe(self) -> str:
        """One line naming the files, dialect and rank."""
        files = ", ".join(self.files[:3]) + (f" (+{len(self.files) - 3} more)" if len(self.files) > 3 else "")
        rank = "" if self.rank is None else f", rank {self.rank}"
        return f"{files} [{self.dialect}{rank}, {len(self.records)} records]"
