"""Append-only JSON-lines files of a run (records.jsonl, the gates' case journals), read back tolerantly.

Every line is written whole, with one `write()` on a file opened with O_APPEND, as the thing it
describes happens. A process killed in the middle of a write can still leave a torn last line:
readers skip such lines and say how many they skipped, instead of losing the whole file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..verdict import GateResult

# The `type` of the lines that are not request records (records.jsonl holds both).
TYPE_KEY = "type"
# The journal of the tests that used a once-per-run evaluation, in its gate's folder (training/, accuracy/).
CASES_FILE = "cases.jsonl"


def json_line(data: Mapping[str, Any]) -> str:
    """One compact JSON line (no newline)."""
    return json.dumps(data, separators=(",", ":"), default=str)


def is_request_record(line: Mapping[str, Any]) -> bool:
    """True for a request record of records.jsonl (header and end lines carry a `type`)."""
    return TYPE_KEY not in line


class JsonLines:
    """The JSON-object lines of a file, read one at a time (a run's records can be large); lines that
    are not a JSON object (a torn last line) are skipped and counted in `torn`. A missing file reads
    as empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for text in handle:
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except ValueError:  # UnicodeDecodeError is a ValueError
                    value = None
                if isinstance(value, dict):
                    yield value
                else:
                    self.torn += 1


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when the file is missing or not a whole JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def end_torn_line(path: Path) -> None:
    """End a torn last line with a newline, so that lines appended later are not glued to it (a run
    continued after a kill)."""
    try:
        with path.open("rb+") as handle:
            handle.seek(0, 2)
            if handle.tell() == 0:
                return
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
    except FileNotFoundError:
        return


def latest_per_test(lines: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The last line of each `nodeid`, in the order of those last lines (a continued run starts a
    test again after its unfinished attempt)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for line in lines:
        nodeid = str(line.get("nodeid"))
        latest.pop(nodeid, None)
        latest[nodeid] = line
    return list(latest.values())


@dataclass(frozen=True)
class Replayed:
    """A gate result rebuilt from a results folder, with the session's part of its fingerprint."""

    nodeid: str
    result: "GateResult"
    fingerprint: Mapping[str, Any]
    at: float  # when the test started (orders the rebuilt results)


@dataclass(frozen=True)
class Incomplete:
    """A test that started but left no result (the run was killed or interrupted during it)."""

    kind: str
    nodeid: str
    profile: str
    case_id: str
    recorded: int | None = None  # measured requests on disk (serving)
    planned: int | None = None  # measured requests planned (serving)
    at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary.json entry (under `incomplete`)."""
        return {"kind": self.kind, "nodeid": self.nodeid, "profile": self.profile, "scenario_id": self.case_id,
                "recorded": self.recorded, "planned": self.planned}


@dataclass
class OnDisk:
    """What one gate left in a results folder: its results, its unfinished tests, unreadable lines."""

    results: list[Replayed] = field(default_factory=list)
    incomplete: list[Incomplete] = field(default_factory=list)
    torn: int = 0
