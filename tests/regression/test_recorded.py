"""A test's comparison with the baseline, kept as a line and applied again to the rebuilt result."""

from __future__ import annotations

import json

from pytest_deepseek.regression.recorded import BaselineComparison, compared_again, latest_comparisons
from pytest_deepseek.verdict import Check, GateResult

FAIL = Check(name="regression.output_throughput_per_node", verdict="fail", message="-40% (allowed -25%)",
             metric="output_throughput_per_node", value=-0.4, details={"against": "v1", "baseline": 100.0})
UNDECIDED = Check(name="regression.ttft_ms.p99", verdict="inconclusive", message="too few requests")


def _passed() -> GateResult:
    return GateResult.decide("serving", "p", "in64-out16-c4", [Check(name="floor.x", verdict="pass", message="ok")])


def test_a_line_round_trips_and_applies_by_the_one_rule() -> None:
    comparison = BaselineComparison("t::a", "v1", (FAIL, UNDECIDED), ("other hardware",), at=100.0)
    again = BaselineComparison.from_json(json.loads(json.dumps(comparison.to_json())))
    assert again == comparison
    applied = again.apply(_passed())
    assert applied.verdict == "fail" and [c.name for c in applied.checks][1:] == [FAIL.name, UNDECIDED.name]
    assert applied.warnings == ("other hardware",)
    allowed = BaselineComparison("t::a", "v1", (UNDECIDED,), allow_inconclusive=True).apply(_passed())
    assert allowed.verdict == "pass"


def test_without_checks_only_the_warning_is_added_and_the_verdict_stays() -> None:
    undecided = GateResult.decide("serving", "p", "c", [UNDECIDED])
    comparison = BaselineComparison("t::a", "v1", warnings=("not compared",), allow_inconclusive=True)
    applied = comparison.apply(undecided)
    assert applied.verdict == "inconclusive" and applied.checks == undecided.checks
    assert applied.warnings == ("not compared",)


def test_the_last_line_of_a_test_counts_and_only_for_the_attempt_it_followed() -> None:
    lines = [BaselineComparison("t::a", "v1", (UNDECIDED,), at=10.0).to_json(),
             {"not": "a comparison"},
             BaselineComparison("t::a", "v1", (FAIL,), at=20.0).to_json(),
             BaselineComparison("t::b", "v1", (FAIL,), at=30.0).to_json()]
    latest = latest_comparisons(lines)
    assert set(latest) == {"t::a", "t::b"} and latest["t::a"].checks == (FAIL,)
    assert compared_again(_passed(), 15.0, latest["t::a"]).verdict == "fail"  # compared after it started
    assert compared_again(_passed(), 25.0, latest["t::a"]) == _passed()  # a later attempt, not compared
    assert compared_again(_passed(), 0.0, None) == _passed()
