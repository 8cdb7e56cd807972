"""Clock offset from timed round trips: the estimate and its hard bound, without any cluster."""

from __future__ import annotations

import random

import pytest

from pytest_deepseek.serving.clock_sync import ClockSample, drift_ns, estimate_offset

TRUE_OFFSET_NS = 3_600_000_000_123  # another machine's monotonic clock started an hour earlier


def _round_trip(t: int, out_ns: int, back_ns: int) -> ClockSample:
    """One round trip with the given one-way delays: the remote reads its clock in between."""
    return ClockSample(sent_ns=t, remote_ns=t + out_ns + TRUE_OFFSET_NS, received_ns=t + out_ns + back_ns)


def test_the_shortest_round_trip_gives_the_estimate_and_bounds_the_truth() -> None:
    rng = random.Random(7)
    samples = []
    t = 10**12
    for _ in range(20):
        out, back = rng.randint(50_000, 5_000_000), rng.randint(50_000, 5_000_000)  # queueing, both ways
        samples.append(_round_trip(t, out, back))
        t += 10_000_000
    found = estimate_offset(samples)
    best = min(samples, key=lambda s: s.round_trip_ns)
    assert found.uncertainty_ns == (best.round_trip_ns + 1) // 2 and found.samples == 20
    assert abs(found.offset_ns - TRUE_OFFSET_NS) <= found.uncertainty_ns  # a bound, whatever the delays
    assert found.offset_ms == pytest.approx(TRUE_OFFSET_NS / 1e6, abs=found.uncertainty_ms)


def test_symmetric_delays_give_the_exact_offset() -> None:
    samples = [_round_trip(1_000 * i, 40_000, 40_000) for i in range(5)]
    found = estimate_offset(samples)
    assert found.offset_ns == TRUE_OFFSET_NS and found.uncertainty_ns == 40_000
    assert found.to_local(TRUE_OFFSET_NS + 5) == 5


def test_the_bound_holds_for_the_worst_asymmetry() -> None:
    # All of the round trip on the way back: the truth sits at the edge of the bound, still inside.
    found = estimate_offset([_round_trip(0, 0, 1_001)])
    assert abs(found.offset_ns - TRUE_OFFSET_NS) <= found.uncertainty_ns == 501


def test_one_host_clock_is_zero_within_the_round_trip() -> None:
    # Same clock on both sides (CLOCK_MONOTONIC on one host): the estimate is 0 within its bound.
    samples = [ClockSample(sent_ns=100, remote_ns=130, received_ns=180), ClockSample(200, 215, 230)]
    found = estimate_offset(samples)
    assert found.offset_ns == 0 and found.uncertainty_ns == 15


def test_drift_is_the_change_of_offset() -> None:
    start = estimate_offset([ClockSample(0, 1_000, 10)])
    end = estimate_offset([ClockSample(0, 1_250, 10)])
    assert drift_ns(start, end) == 250


@pytest.mark.parametrize("samples", [[], [ClockSample(sent_ns=10, remote_ns=5, received_ns=9)]])
def test_no_sample_or_a_backwards_one_is_refused(samples: list[ClockSample]) -> None:
    with pytest.raises(ValueError):
        estimate_offset(samples)
