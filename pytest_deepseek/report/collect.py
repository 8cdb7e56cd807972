"""Collects per-test results on the controlling process and writes them as they arrive.

Tests put their `GateResult` in `item.stash[RESULT_KEY]`; the plugin copies its JSON onto the test
report (attribute `deepseek_result`, which survives xdist's report serialisation); this collector,
registered as a plugin on the controller only, receives every report, turns it back into a
`GateResult`, rewrites `summary.json` and appends to `test_result.csv` right away, so a killed run
keeps what it measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ..verdict import GateResult

if TYPE_CHECKING:
    from ..session import RunState

RESULT_KEY = pytest.StashKey[GateResult]()
RESULT_ATTR = "deepseek_result"


@dataclass(frozen=True)
class CollectedResult:
    """A gate result as the run saw it: which test, and pytest's outcome."""

    nodeid: str
    outcome: str
    result: GateResult

    def to_json(self) -> dict[str, Any]:
        """The summary.json entry."""
        return {**self.result.to_json(), "nodeid": self.nodeid, "outcome": self.outcome}


def csv_row(entry: CollectedResult) -> dict[str, Any]:
    """The `test_result.csv` row of a serving result."""
    result = entry.result
    scenario = result.details.get("scenario") or {}
    metrics = result.metrics

    def stat(name: str, key: str) -> Any:
        value = (metrics.get(name) or {}).get(key)
        return round(value, 3) if isinstance(value, float) else value

    def num(name: str) -> Any:
        value = metrics.get(name)
        return round(value, 3) if isinstance(value, float) else value

    return {
        "profile": result.profile,
        "scenario": result.case_id,
        "simulated": result.simulated,
        "api": scenario.get("api"),
        "dataset": scenario.get("dataset"),
        "mode": scenario.get("mode"),
        "concurrency": scenario.get("concurrency"),
        "request_rate": scenario.get("request_rate"),
        "num_prompts": scenario.get("num_prompts"),
        "input_len": scenario.get("input_len"),
        "output_len": scenario.get("output_len"),
        "completed": metrics.get("completed"),
        "failed": metrics.get("failed"),
        "input_throughput_per_node": num("input_throughput_per_node"),
        "output_throughput_per_node": num("output_throughput_per_node"),
        "output_throughput": num("output_throughput"),
        "output_throughput_run_window": num("output_throughput_run_window"),
        "request_throughput": num("request_throughput"),
        "ttft_ms_p50": stat("ttft_ms", "p50"),
        "ttft_ms_p99": stat("ttft_ms", "p99"),
        "tpot_ms_p50": stat("tpot_ms", "p50"),
        "tpot_ms_p99": stat("tpot_ms", "p99"),
        "e2e_ms_p99": stat("e2e_ms", "p99"),
        "verdict": result.verdict,
        "nodeid": entry.nodeid,
    }


class ResultCollector:
    """A plugin object living on the controller: gathers results, writes files, feeds the summary."""

    def __init__(self, state: "RunState") -> None:
        self.state = state
        self.results: list[CollectedResult] = []

    def add(self, report: pytest.TestReport, result: GateResult) -> None:
        """Record one test's result and write it out."""
        entry = CollectedResult(report.nodeid, report.outcome, result)
        self.results.append(entry)
        if result.kind == "serving":
            self.state.folder.append_csv_row(csv_row(entry))
        self.write_summary()

    def summary(self) -> dict[str, Any]:
        """The summary.json document."""
        return {"run": self.state.run_header(), "tests": [entry.to_json() for entry in self.results]}

    def write_summary(self) -> None:
        """Rewrite summary.json (atomic)."""
        self.state.folder.write_summary(self.summary())

    # -- hooks ---------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, RESULT_ATTR, None)
        if isinstance(data, dict):
            self.add(report, GateResult.from_json(data))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        from .terminal import render_summary

        render_summary(terminalreporter, self)

    def pytest_unconfigure(self) -> None:
        if self.results:
            self.write_summary()
