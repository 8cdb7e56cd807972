"""What every dialect parser shares: the record sink, corrupt-line accounting, stamps."""

from __future__ import annotations

import json
import math
from collections.abc import Container
from typing import Any, ClassVar

from ..normalise import StampParser
from ..records import Event, Record

MAX_CORRUPT_EXAMPLES = 5


class Parser:
    """Base of the dialect parsers: feed normalised lines, collect records.

    Subclasses implement ``feed`` (one line; return True when it was a record line) and may
    override ``finish`` (flush a half-built record) and ``feed_whole`` (whole-file formats).
    """

    name: ClassVar[str] = ""
    units: ClassVar[dict[str, str]] = {}
    # the rank that owns the loss when several ranks wrote: "first" or "last"
    owner: ClassVar[str] = "first"

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.events: list[Event] = []
        self.corrupt = 0
        self.corrupt_examples: list[str] = []
        self.info: dict[str, float] = {}
        self.warnings: list[str] = []
        self.stamps = StampParser()
        self.file = ""
        self.file_rank: int | None = None

    def start_file(self, file: str, rank: int | None) -> None:
        """Begin a new source file (flushing anything pending from the previous one)."""
        self.finish()
        self.file = file
        self.file_rank = rank

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        """Consume one normalised line; True when it carried a record."""
        raise NotImplementedError

    def feed_whole(self, text: str) -> bool:
        """Consume a whole file at once; False when the format is line based."""
        return False

    def finish(self) -> None:
        """Flush state held across lines."""

    def bad(self, lineno: int, text: str, why: str) -> None:
        """Count a corrupt line and keep a few examples for the report."""
        self.corrupt += 1
        if len(self.corrupt_examples) < MAX_CORRUPT_EXAMPLES:
            self.corrupt_examples.append(f"{self.file}:{lineno}: {why}: {text[:200]}")

    def emit(self, iteration: int, metrics: dict[str, float], rank: int | None, lineno: int,
             line: str, time: float | None = None, epoch: int | None = None) -> None:
        """Append a record, the line's rank winning over the file's."""
        self.records.append(Record(iteration, metrics, self.file_rank if rank is None else rank,
                                   time, self.file, lineno, line, epoch))


def parse_json(text: str) -> Any:
    """`json.loads`; nesting too deep for Python is a ValueError like any other unreadable JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_number(value: Any) -> float | None:
    """A JSON metric value as a float (an integer too large for a float is infinite); None if not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def json_metrics(record: dict[str, Any], skip: Container[str]) -> dict[str, float]:
    """The numbers of a JSON record as floats (true/false, text and the keys in ``skip`` left out)."""
    try:  # the common case, in one pass
        return {k: float(v) for k, v in record.items()
                if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)}
    except OverflowError:  # an integer too large for a float
        return {k: v for k, v in ((k, json_number(v)) for k, v in record.items() if k not in skip) if v is not None}


# Step numbers have at most 18 digits (the text dialects' patterns match no more): beyond, an int is
# no step, and the float arithmetic on steps downstream would overflow.
MAX_STEP = 10**18


def json_step(value: Any) -> int | None:
    """A JSON step, iteration or rank: a whole number (``5`` or ``5.0``) below ``MAX_STEP`` in size;
    None for NaN, ``5.5``, text, booleans."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if abs(value) < MAX_STEP else None
