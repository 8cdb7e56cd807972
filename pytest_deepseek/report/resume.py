"""Continuing a run (`--deepseek-resume RUN_DIR`): what it already finished, and its files made ready.

The tests whose results the run's summary.json holds are finished: in the continued run their
results carry over (the test passes or fails as it did, without measuring again), so the exit
status and the tables cover the whole run. When summary.json cannot be read, the results are
rebuilt from the records first. Every other test runs, appending to the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .journal import CASES_FILE, end_torn_line
from .rebuild import RECORDS, previous_summary, rebuild_run


@dataclass(frozen=True)
class Finished:
    """What a run to be continued already holds."""

    started: str | None  # when the run first started
    entries: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> its summary.json entry


def finished_tests(run_dir: Path) -> Finished:
    """The run's finished tests, from summary.json (or rebuilt from the records when it is unreadable)."""
    summary = previous_summary(run_dir)
    if summary is None:
        rebuilt = rebuild_run(run_dir)
        return Finished(None, {e.nodeid: e.to_json() for e in rebuilt.entries})
    started = (summary.get("run") or {}).get("started")
    tests = [e for e in summary.get("tests") or () if isinstance(e, Mapping) and e.get("nodeid")]
    return Finished(str(started) if started else None, {str(e["nodeid"]): dict(e) for e in tests})


def ready_to_append(run_dir: Path) -> None:
    """End any line torn by the kill, so that what the continued run appends starts on a line of its own."""
    for path in (run_dir / RECORDS, run_dir / "training" / CASES_FILE, run_dir / "accuracy" / CASES_FILE):
        end_torn_line(path)
