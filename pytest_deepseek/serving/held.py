"""The finished request records a run keeps for judging, with a bounded share in memory.

A run is judged on all its records at the end (and, with early stopping, on all of them so far at
every look), so a load runner keeps every record. At 5,000 streamed tokens/s that is about 3 KB
per request and 400 MB per hour, all of it growth. `HeldRecords` keeps the newest records in
memory up to a byte budget and pickles older ones, a batch at a time, to an anonymous spill file
(deleted with the object); iterating reads them back in order. Short runs never reach the budget
and behave exactly like a list.

The records are already in the run's records.jsonl; the spill file is separate because that file
is shared by every scenario of the run, and is JSON, which reads back five times slower.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from .records import RequestRecord

# In-memory records are pickled out once their estimated size passes this. 16 MB holds about
# 5,000 requests of 256 streamed tokens: every run of the suites' usual sizes stays in memory,
# and an hour-long soak grows by no more than this.
MEMORY_BUDGET_BYTES = 16 * 1024 * 1024
# Spilled a batch at a time: pickling or reading back one holds the interpreter lock (an
# early-stop look reads them in a thread while the event loop times the streams), so batches stay
# small: 256 records of 256 tokens pickle in about 1 ms.
SPILL_BATCH = 256


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


class HeldRecords:
    """Append-only, ordered records: the newest in memory, older ones in a spill file.

    `snapshot()` freezes what is held now for a reader in another thread (an early-stop look)
    without copying the spilled part: the spill file only grows.
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = MEMORY_BUDGET_BYTES if budget_bytes is None else budget_bytes
        self._tail: list[RequestRecord] = []
        self._sizes: list[int] = []  # record_bytes of each record of the tail
        self._tail_bytes = 0
        self._spill: BinaryIO | None = None
        self._batches: list[tuple[int, int]] = []  # (offset, length) of each pickled batch
        self._spilled = 0

    def append(self, record: RequestRecord) -> None:
        """Keep `record` (the last one so far)."""
        size = record_bytes(record)
        self._tail.append(record)
        self._sizes.append(size)
        self._tail_bytes += size
        while self._tail_bytes > self.budget_bytes and self._tail:
            self._spill_oldest()

    def extend(self, records: list[RequestRecord]) -> None:
        """Keep each of `records`, in order."""
        for record in records:
            self.append(record)

    def _spill_oldest(self) -> None:
        """Pickle the oldest SPILL_BATCH records of the tail to the spill file."""
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="deepseek-held-")
        batch = self._tail[:SPILL_BATCH]
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        offset = self._spill.seek(0, 2)
        self._spill.write(data)
        self._spill.flush()
        self._batches.append((offset, len(data)))
        self._spilled += len(batch)
        self._tail_bytes -= sum(self._sizes[:SPILL_BATCH])
        del self._tail[:SPILL_BATCH], self._sizes[:SPILL_BATCH]

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

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[RequestRecord]:
        return self.snapshot().__iter__()

    def snapshot(self) -> "HeldView":
        """What is held now, readable later from any thread (the spill file, already unlinked,
        goes when the last holder and view of it do)."""
        return HeldView(self._spill, tuple(self._batches), list(self._tail))


class HeldView:
    """A frozen, iterable view of `HeldRecords`: the spilled batches it saw, then its tail."""

    def __init__(self, spill: BinaryIO | None, batches: tuple[tuple[int, int], ...],
                 tail: list[RequestRecord]) -> None:
        self._spill = spill
        self._batches = batches
        self._tail = tail

    def _spilled_batches(self) -> Iterator[list[RequestRecord]]:
        if self._spill is None:
            return
        # os.pread: no shared file position, so a look in another thread and the appending loop
        # never disturb each other.
        fd = self._spill.fileno()
        for offset, length in self._batches:
            yield pickle.loads(os.pread(fd, length, offset))

    def __iter__(self) -> Iterator[RequestRecord]:
        for batch in self._spilled_batches():
            yield from batch
        yield from self._tail
