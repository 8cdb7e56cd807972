"""The end-of-run tables keep their colours on a terminal and carry none into logs and files."""

from __future__ import annotations

from pytest_deepseek.report.entries import CollectedResult
from pytest_deepseek.report.terminal import render_tables
from pytest_deepseek.verdict import Check, GateResult


def _entries() -> list[CollectedResult]:
    failing = GateResult.decide("training", "p", "loss", [Check(name="converge", verdict="fail", message="too high")])
    passing = GateResult.decide("training", "p", "speed", [Check(name="floor.tokens_per_sec", verdict="pass",
                                                                 message="fast enough")])
    return [CollectedResult.decided("t::a", failing), CollectedResult.decided("t::b", passing)]


def test_colour_on_a_terminal() -> None:
    text = render_tables(_entries(), "deepseek-results/x", color=True)
    assert "\x1b[31m" in text and "\x1b[32m" in text  # FAIL red, PASS green
    assert "FAIL" in text and "PASS" in text


def test_no_colour_elsewhere() -> None:
    text = render_tables(_entries(), "deepseek-results/x")
    assert "\x1b[" not in text and "FAIL" in text and "PASS" in text
