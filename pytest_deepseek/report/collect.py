"""Collects per-test results on the controlling process and writes them as they arrive.

Tests put a plain-JSON result dict in `item.stash[RESULT_KEY]`; the plugin copies it onto the test
report (attribute `deepseek_result`, which survives xdist's report serialisation); this collector,
registered as a plugin on the controller only, receives every report and rewrites `summary.json`
and appends to `test_result.csv` right away, so a killed run keeps what it measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..session import RunState

RESULT_KEY = pytest.StashKey[dict]()
RESULT_ATTR = "deepseek_result"


def csv_row(result: dict[str, Any]) -> dict[str, Any]:
    """The `test_result.csv` row of a serving result."""
    scenario = result.get("scenario") or {}
    metrics = result.get("metrics") or {}

    def stat(name: str, key: str) -> Any:
        value = (metrics.get(name) or {}).get(key)
        return round(value, 3) if isinstance(value, float) else value

    def num(name: str) -> Any:
        value = metrics.get(name)
        return round(value, 3) if isinstance(value, float) else value

    return {
        "profile": result.get("profile"),
        "scenario": result.get("scenario_id"),
        "simulated": result.get("simulated"),
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
        "verdict": result.get("verdict"),
        "nodeid": result.get("nodeid"),
    }


class ResultCollector:
    """A plugin object living on the controller: gathers results, writes files, feeds the summary."""

    def __init__(self, state: "RunState") -> None:
        self.state = state
        self.results: list[dict[str, Any]] = []

    def add(self, report: pytest.TestReport, result: dict[str, Any]) -> None:
        """Record one test's result and write it out."""
        entry = dict(result)
        entry["nodeid"] = report.nodeid
        entry["outcome"] = report.outcome
        entry.setdefault("simulated", bool(self.state.endpoint and self.state.endpoint.simulated))
        self.results.append(entry)
        folder = self.state.folder
        if entry.get("kind") == "serving":
            folder.append_csv_row(csv_row(entry))
        self.write_summary()

    def summary(self) -> dict[str, Any]:
        """The summary.json document."""
        return {"run": self.state.run_header(), "tests": self.results}

    def write_summary(self) -> None:
        """Rewrite summary.json (atomic)."""
        self.state.folder.write_summary(self.summary())

    # -- hooks ---------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, RESULT_ATTR, None)
        if isinstance(result, dict):
            self.add(report, result)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        from .terminal import render_summary

        render_summary(terminalreporter, self)

    def pytest_unconfigure(self) -> None:
        if self.results:
            self.write_summary()
