"""Summary entries without pytest: a collected result, its CSV row, the summary.json document.

Shared by the collector of a live run and by `pytest-deepseek report`, which rebuilds the same
files from a results folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..verdict import GateResult

PASSED, FAILED = "passed", "failed"  # pytest's outcome of a gate test


@dataclass(frozen=True)
class CollectedResult:
    """A gate result as the run saw it: which test, and pytest's outcome."""

    nodeid: str
    outcome: str
    result: GateResult

    def to_json(self) -> dict[str, Any]:
        """The summary.json entry."""
        return {**self.result.to_json(), "nodeid": self.nodeid, "outcome": self.outcome}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CollectedResult":
        """Inverse of `to_json` (a summary.json entry)."""
        rest = {k: v for k, v in data.items() if k not in ("nodeid", "outcome")}
        return cls(str(data["nodeid"]), str(data.get("outcome") or ""), GateResult.from_json(rest))

    @classmethod
    def decided(cls, nodeid: str, result: GateResult) -> "CollectedResult":
        """The entry of a result read back from a results folder: a gate test fails unless it passes."""
        return cls(nodeid, PASSED if result.passed else FAILED, result)


def passed_with_warnings(entries: Sequence[CollectedResult]) -> list[CollectedResult]:
    """The results that passed and still have something to say (a result that did not pass shows
    its warnings with its failure)."""
    return [entry for entry in entries if entry.result.passed and entry.result.warnings]


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


def with_session_fingerprint(result: GateResult, session: Mapping[str, Any]) -> GateResult:
    """The result with the session's part of the fingerprint (plugin, endpoint, profile, thresholds,
    tokenizer) before the gate's own part."""
    return replace(result, fingerprint={**session, **result.fingerprint})


def summary_document(run: Mapping[str, Any], entries: Sequence[CollectedResult],
                     incomplete: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The summary.json document: the run header, one entry per finished gate test and, when a
    results folder was read back after a kill, the tests that started but never finished."""
    document: dict[str, Any] = {"run": dict(run), "tests": [entry.to_json() for entry in entries]}
    if incomplete:
        document["incomplete"] = [dict(item) for item in incomplete]
    return document
