"""Ground truth: one JSON line per finished request, saying exactly what was emitted and when.

Times are `time.perf_counter_ns()` taken right before the bytes of a chunk are handed to the
socket; on Linux that clock is CLOCK_MONOTONIC, the same axis as the client's records.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TruthRecord:
    """What the simulator did for one request."""

    request_id: str
    arrival_ns: int  # request fully received
    first_emit_ns: int | None = None  # first token-carrying chunk written
    emit_ns: list[int] = field(default_factory=list)  # one entry per token-carrying chunk (SSE event)
    emit_tokens: list[int] = field(default_factory=list)  # tokens in each of those chunks
    prompt_tokens: int = 0
    completion_tokens: int = 0  # tokens emitted, reasoning included
    reasoning_tokens: int = 0  # of which reasoning (completions: the <think> tags count)
    status: int = 200  # HTTP status answered; 0 when the connection was dropped before a status line
    error: str | None = None  # None, or what went wrong (injected failures say which kind)
    fault: str | None = None  # the injected fault (a name in faults.FAULT_NAMES), if any
    api: str = ""  # "completions" or "chat"
    stream: bool = True
    finish_reason: str | None = None

    def to_json_line(self) -> str:
        """The record as one JSON line (with the newline)."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")) + "\n"

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> TruthRecord:
        """Rebuild a record; unknown keys are ignored so older readers keep working."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class TruthWriter:
    """Appends records to a JSONL file, buffered; flushed every `interval_s` and on close."""

    def __init__(self, path: Path, interval_s: float = 0.5) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._buffer: list[str] = []
        self._interval_ns = int(interval_s * 1e9)
        self._last_flush_ns = time.perf_counter_ns()
        self._lock = threading.Lock()

    def write(self, record: TruthRecord) -> None:
        """Queue one record; flushes when the last flush is older than the interval."""
        with self._lock:
            self._buffer.append(record.to_json_line())
        if time.perf_counter_ns() - self._last_flush_ns >= self._interval_ns:
            self.flush()

    def flush(self) -> None:
        """Write out everything queued."""
        with self._lock:
            if self._buffer and not self._file.closed:
                self._file.write("".join(self._buffer))
                self._file.flush()
            self._buffer.clear()
            self._last_flush_ns = time.perf_counter_ns()

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        with self._lock:
            self._file.close()


def read_truth(path: Path | str) -> dict[str, TruthRecord]:
    """Records of a truth file by request id (a later record of the same id wins)."""
    records: dict[str, TruthRecord] = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = TruthRecord.from_json_dict(json.loads(line))
                records[record.request_id] = record
    return records
