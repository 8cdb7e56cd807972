"""Warnings of results that passed are shown: in the terminal tables' text and in the HTML report
(a result that did not pass shows its warnings with its failure, once)."""

from __future__ import annotations

from pytest_deepseek.report.entries import CollectedResult, passed_with_warnings
from pytest_deepseek.report.html.page import failures_section
from pytest_deepseek.report.terminal import render_tables
from pytest_deepseek.verdict import Check, GateResult

WARNING = "measured under other conditions than the baseline v1: hardware H800 -> 910B"


def _entries() -> list[CollectedResult]:
    check = Check(name="floor.tokens_per_sec", verdict="pass", message="fast enough")
    warned = GateResult.decide("training", "p", "warned", [check], warnings=(WARNING,))
    quiet = GateResult.decide("training", "p", "quiet", [check])
    failing = GateResult.decide("training", "p", "failing", [Check(name="converge", verdict="fail", message="too high")],
                                warnings=("3 corrupt line(s) skipped",))
    return [CollectedResult.decided("t::warned", warned), CollectedResult.decided("t::quiet", quiet),
            CollectedResult.decided("t::failing", failing)]


def test_only_passing_results_with_warnings_are_picked() -> None:
    assert [e.nodeid for e in passed_with_warnings(_entries())] == ["t::warned"]


def test_the_terminal_text_names_the_test_and_its_warning_and_each_warning_once() -> None:
    text = render_tables(_entries(), "deepseek-results/x", width=200)
    lines = text.splitlines()
    assert "PASS with warnings t::warned" in lines
    assert lines[lines.index("PASS with warnings t::warned") + 1] == f"  warning: {WARNING}"
    assert "t::quiet" not in text
    assert text.count("3 corrupt line(s) skipped") == 1 and "FAIL t::failing" in text


def test_the_html_failures_section_lists_passing_results_with_warnings() -> None:
    html = str(failures_section(_entries()))
    assert "Passed, with warnings" in html and "t::warned" in html
    assert "warning: measured under other conditions than the baseline v1: hardware H800 -&gt; 910B" in html
    assert "t::quiet" not in html and html.count("3 corrupt line(s) skipped") == 1
