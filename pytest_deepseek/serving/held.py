"""The finished request records a run keeps for judging, with a bounded share in memory.

A run is judged on all its records at the end (and, with early stopping, on all of them so far at
every look), so a load runner keeps every record. At 5,000 streamed tokens/s that is about 3 KB
per request and 400 MB per hour, all of it growth. `HeldRecords` keeps the newest records in
memory up to a byte budget and pickles older ones, a batch at a time, to an anonymous spill file
in the temporary directory (deleted with the object); iterating reads them back in order. Short
runs never reach the budget and behave exactly like a list.

While the run goes on, memory stays flat. Judging reads every record back: an early-stop look
holds them all while it decides (in its thread), and so does the judgement at the end.

The records are already in the run's records.jsonl; the spill file is separate because that file
is shared by every scenario of the run, and is JSON, which reads back six to eight times slower
than pickle (256 records of 128-256 tokens, best of 10: 8.9-13.6 ms against 1.5-1.6 ms).
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from collections.abc import Iterator

from .records import RequestRecord

# In-memory records are pickled out once their estimated size passes this. 16 MB holds about
# 3,800 requests of 256 streamed tokens (6,500 of 128): runs of the suites' usual sizes stay in
# memory, and an hour-long soak grows by no more than this.
MEMORY_BUDGET_BYTES = 16 * 1024 * 1024
# Spilled a batch at a time, on the event loop, and read back a batch at a time, in a look's
# thread: each holds the interpreter lock (and the timing of every stream) for as long as it takes,
# so batches stay small: 64 records of 128-256 tokens pickle in about 0.5 ms and load in 0.35 ms
# (best of 20 here; a few times that on a busy box).
SPILL_BATCH = 64


def record_bytes(record: RequestRecord) -> int:
    """Estimated memory of one finished record: the object, its event lists or arrays, the time
    stamps of a list (ints too large to be shared; an array holds them inline) and its strings.
    Token counts and flags are shared small ints and bools."""
    size = sys.getsizeof(record)
    for values in (record.event_times, record.event_tokens, record.event_reasoning):
        size += sys.getsizeof(values)
    if isinstance(record.event_times, list) and record.event_times:
        size += len(record.event_times) * sys.getsizeof(record.event_times[0])
    size += 4 * sys.getsizeof(record.t_send)  # t_queued, t_send, t_headers, t_end
    for text in (record.request_id, record.text, record.reasoning_text, record.finish_reason, record.error_detail):
        if text:
            size += sys.getsizeof(text)
    return size


class _SpillFile:
    """An anonymous file (unlinked at once) written at its end and read at any offset; closed when
    the last holder of it (the records or a view) goes."""

    def __init__(self) -> None:
        fd, path = tempfile.mkstemp(prefix="deepseek-held-")
        os.unlink(path)
        self.fd: int | None = fd
        self.size = 0

    def append(self, data: bytes) -> int:
        """Write `data` at the end; its offset."""
        assert self.fd is not None
        offset, view = self.size, memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset + len(data) - len(view))
            view = view[written:]
        self.size += len(data)
        return offset

    def read(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (os.pread: no shared position, so a reader in another thread
        and the writer never disturb each other)."""
        assert self.fd is not None
        return os.pread(self.fd, length, offset)

    def __del__(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class HeldRecords:
    """Append-only, ordered records: the newest in memory, older ones in a spill file.

    `snapshot()` freezes what is held now for a reader in another thread (an early-stop look)
    without copying the spilled part: the spill file only grows. A spill that fails (a full
    disk) is not an error: the records then stay in memory (`spill_error` says why).
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = MEMORY_BUDGET_BYTES if budget_bytes is None else budget_bytes
        self._tail: list[RequestRecord] = []
        self._sizes: list[int] = []  # record_bytes of each record of the tail
        self._tail_bytes = 0
        self._spill: _SpillFile | None = None
        self._batches: list[tuple[int, int]] = []  # (offset, length) of each pickled batch
        self._spilled = 0
        self.spill_error: str | None = None

    def append(self, record: RequestRecord) -> None:
        """Keep `record` (the last one so far)."""
        size = record_bytes(record)
        self._tail.append(record)
        self._sizes.append(size)
        self._tail_bytes += size
        while self._tail_bytes > self.budget_bytes and self._tail and self.spill_error is None:
            try:
                self._spill_oldest()
            except OSError as exc:
                self.spill_error = (f"the spill file in {tempfile.gettempdir()} failed after {self._spilled} "
                                    f"record(s) ({exc}): every later record was kept in memory, so the "
                                    "client's memory grew with the run (its figures are unaffected)")

    def extend(self, records: list[RequestRecord]) -> None:
        """Keep each of `records`, in order."""
        for record in records:
            self.append(record)

    def _spill_oldest(self) -> None:
        """Pickle the oldest SPILL_BATCH records of the tail to the spill file."""
        if self._spill is None:
            self._spill = _SpillFile()
        batch = self._tail[:SPILL_BATCH]
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        self._batches.append((self._spill.append(data), len(data)))
        self._spilled += len(batch)
        self._tail_bytes -= sum(self._sizes[:SPILL_BATCH])
        del self._tail[:SPILL_BATCH], self._sizes[:SPILL_BATCH]

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the run's report should say about how its records were held (a failed spill)."""
        return (self.spill_error,) if self.spill_error else ()

    @property
    def spilled(self) -> int:
        """How many records are in the spill file."""
        return self._spilled

    @property
    def memory_bytes(self) -> int:
        """Estimated memory of the records held in memory."""
        return self._tail_bytes

    def __len__(self) -> int:
        return self._spilled + len(self._tail)

    def __iter__(self) -> Iterator[RequestRecord]:
        return self.snapshot().__iter__()

    def snapshot(self) -> "HeldView":
        """What is held now, readable later from any thread."""
        return HeldView(self._spill, tuple(self._batches), list(self._tail))


class HeldView:
    """A frozen, iterable view of `HeldRecords`: the spilled batches it saw, then its tail."""

    def __init__(self, spill: _SpillFile | None, batches: tuple[tuple[int, int], ...],
                 tail: list[RequestRecord]) -> None:
        self._spill = spill
        self._batches = batches
        self._tail = tail

    def __iter__(self) -> Iterator[RequestRecord]:
        if self._spill is not None:
            for offset, length in self._batches:
                yield from pickle.loads(self._spill.read(offset, length))
        yield from self._tail
