"""Short garbage-collector pauses while a load is measured.

A full (oldest-generation) collection walks every object the cyclic collector tracks and holds
the event loop, hence every stream's reads, while it does. In a gate run that is all of pytest,
its plugins, the tokenizer and the prompt plan: full passes of 50-190 ms every few minutes in an
hour-long soak, growing with the heap, each landing in the TTFT and chunk gaps of every request in
flight and in the client-health stall count (20-second gate runs at 12.5k tok/s were called
client-bound for them).
`quiet_collector` freezes what is alive when the measured phase starts: reference counting still
frees those objects, only the cyclic collector stops walking them (garbage cycles among them wait
for the first full pass after the phase). Objects made during the run are collected as before;
everything is unfrozen when the last measured phase ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_active = 0  # measured phases running in this process (a freeze is process-wide)


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Keep every object alive now out of the cyclic collector's walks until the block ends.

    Nested or overlapping blocks share one freeze: it is lifted when the outermost one ends.
    """
    global _active
    if _active == 0:
        gc.freeze()
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            gc.unfreeze()
