"""The offset between this process's clock and a remote one, from timed round trips (pure).

Each round trip reads this clock, asks the remote side for its clock, and reads this clock again
when the answer is back. Whatever the network did, the remote reading was taken between the two
local readings, so the offset (remote minus local) lies within the sample's midpoint estimate
plus or minus half its round trip: a hard bound, not a statistical one (for clocks that do not
drift apart during the round trip). The sample with the shortest round trip gives the tightest
bound; queueing and scheduling delays only ever lengthen a round trip, so the best of a few
samples is close to the wire's own latency (the minimum-delay filter of NTP).

On one host `time.perf_counter_ns` is CLOCK_MONOTONIC for every process: the true offset is 0 and
the estimate is 0 plus or minus tens of microseconds (what a local round trip costs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROUND_TRIPS = 20  # samples per measurement: enough for one short, undisturbed round trip


@dataclass(frozen=True)
class ClockSample:
    """One round trip: the local clock before asking, the remote reading, the local clock after."""

    sent_ns: int
    remote_ns: int
    received_ns: int

    @property
    def round_trip_ns(self) -> int:
        return self.received_ns - self.sent_ns

    @property
    def offset_ns(self) -> int:
        """The remote reading minus the local midpoint of the round trip."""
        return self.remote_ns - (self.sent_ns + self.received_ns) // 2


@dataclass(frozen=True)
class ClockOffset:
    """The remote clock minus the local one, within `offset_ns` plus or minus `uncertainty_ns`."""

    offset_ns: int
    uncertainty_ns: int  # half the round trip of the sample used
    samples: int

    @property
    def offset_ms(self) -> float:
        return self.offset_ns / 1e6

    @property
    def uncertainty_ms(self) -> float:
        return self.uncertainty_ns / 1e6

    def to_local(self, remote_ns: int) -> int:
        """A remote clock reading on the local clock."""
        return remote_ns - self.offset_ns


def estimate_offset(samples: Sequence[ClockSample]) -> ClockOffset:
    """The offset given by the sample with the shortest round trip, and its bound."""
    if not samples:
        raise ValueError("no clock samples")
    bad = [s for s in samples if s.round_trip_ns < 0]
    if bad:
        raise ValueError(f"a clock sample ends before it starts: {bad[0]}")
    best = min(samples, key=lambda s: s.round_trip_ns)
    return ClockOffset(offset_ns=best.offset_ns, uncertainty_ns=(best.round_trip_ns + 1) // 2, samples=len(samples))


def drift_ns(start: ClockOffset, end: ClockOffset) -> int:
    """How far the remote clock moved against the local one between two measurements."""
    return end.offset_ns - start.offset_ns
