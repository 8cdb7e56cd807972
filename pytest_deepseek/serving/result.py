"""The serving gate's result: the `GateResult` of one scenario and its benchmark-style log.

summary.json keeps the serving keys it always had: scenario, metrics, checks, contract, errors,
client, stopped_early, batch_latency_ms, nodes, devices_per_node, model, the prompt facts,
verdict, records and log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..verdict import Check, GateResult
from .contract import ClientHealth, ContractViolation, is_client_bound
from .failures import FailureSummary, failure_lines
from .metrics import RunMetrics
from .records import RequestRecord
from .replicas import EndpointFigures
from .spec import ClientLimits, Scenario

# Headline numbers, as JUnit properties (`deepseek.<name>`).
FIGURES = ("output_throughput_per_node", "input_throughput_per_node", "ttft_ms.p50", "ttft_ms.p99",
           "tpot_ms.p50", "tpot_ms.p99", "error_rate")
LATENCY_LINES = (("ttft_ms", "TTFT"), ("ttfo_ms", "TTFO"), ("tpot_ms", "TPOT"), ("e2e_ms", "E2E"),
                 ("chunk_gap_ms", "chunk gap (vLLM ITL)"))


def describe(scenario: Scenario, api: str) -> dict[str, Any]:
    """The scenario as summary.json shows it, with the API it was sent through."""
    return {**scenario.describe(), "api": api}


def client_summary(health: ClientHealth, limits: ClientLimits,
                   violations: Sequence[ContractViolation]) -> dict[str, Any]:
    """The load generator's own health, the limits it was held to, and whether it bound the run
    (with several load processes, each one's own health under `workers`)."""
    out: dict[str, Any] = {
        "loop_lag_p99_ms": health.loop_lag_p99_ms, "loop_lag_max_ms": health.loop_lag_max_ms,
        "schedule_lag_p99_ms": health.schedule_lag_p99_ms, "cpu_fraction": health.cpu_fraction,
        "achieved_concurrency": health.achieved_concurrency, "achieved_rate": health.achieved_rate,
        "client_bound": is_client_bound(violations), "limits": limits.to_json(),
    }
    if health.workers:
        out["workers"] = [{"loop_lag_p99_ms": w.loop_lag_p99_ms, "loop_lag_max_ms": w.loop_lag_max_ms,
                           "schedule_lag_p99_ms": w.schedule_lag_p99_ms, "cpu_fraction": w.cpu_fraction,
                           **_placed(w)}
                          for w in health.workers]
    return out


def _placed(worker: ClientHealth) -> dict[str, Any]:
    """Where a load worker on a cluster node ran and its clock against the coordinator's (local: nothing)."""
    if worker.where is None:
        return {}
    return {"where": worker.where, "clock_offset_ms": worker.clock_offset_ms,
            "clock_uncertainty_ms": worker.clock_uncertainty_ms, "clock_drift_ms": worker.clock_drift_ms}


def _worker_lines(result: GateResult) -> list[str]:
    """One log line per load worker that ran on a cluster node."""
    workers = (result.details.get("client") or {}).get("workers") or []
    return [f"Load worker {w['where']}: clock offset {_fmt(w.get('clock_offset_ms'), 3)} "
            f"+/- {_fmt(w.get('clock_uncertainty_ms'), 3)} ms, drift {_fmt(w.get('clock_drift_ms'), 3)} ms"
            for w in workers if w.get("where")]


def figures(metrics: RunMetrics) -> dict[str, float | None]:
    """The headline numbers of a run."""
    return {name: metrics.value(name) for name in FIGURES}


def measured_result(
    *, profile: str, case_id: str, scenario: Scenario, api: str, model: str, simulated: bool, nodes: int,
    devices_per_node: int, metrics: RunMetrics, checks: Sequence[Check], violations: Sequence[ContractViolation],
    health: ClientHealth, stopped_early: bool, batch_latencies_ms: Sequence[float], facts: Mapping[str, Any],
    records: str, log: str, failures: FailureSummary | None = None, endpoints: Sequence[EndpointFigures] = (),
    warnings: Sequence[str] = (),
) -> GateResult:
    """The result of a scenario that ran: contract violations are problems (ERROR), then the checks.
    `endpoints`: each endpoint's figures, for a deployment measured on (or woken through) several URLs;
    `warnings`: what the load generator has to say that leaves the verdict alone."""
    return GateResult.decide(
        "serving", profile, case_id, checks,
        problems=[v.message for v in violations],
        allow_inconclusive=scenario.allow_inconclusive,
        metrics=metrics.to_dict(),
        figures=figures(metrics),
        simulated=simulated,
        warnings=tuple(warnings),
        locations={"records": records, "log": log},
        fingerprint={"api": api, "dataset": scenario.dataset, "prompt_set_hash": facts.get("prompt_set_hash"),
                     "prompt_seed": facts.get("prompt_seed")},
        details={
            "scenario": describe(scenario, api),
            "contract": [{"code": v.code, "message": v.message, "count": v.count, "examples": list(v.examples)}
                         for v in violations],
            "client": client_summary(health, scenario.client_limits, violations),
            "stopped_early": stopped_early,
            "batch_latency_ms": list(batch_latencies_ms) or None,
            "nodes": nodes,
            "devices_per_node": devices_per_node,
            "model": model,
            "failures": (failures or FailureSummary(measured=0)).to_json(),
            **({"endpoints": [figures.to_json() for figures in endpoints]} if endpoints else {}),
            **facts,
        },
    )


def unmeasured_result(*, profile: str, case_id: str, scenario: Scenario, api: str, simulated: bool,
                      problem: str) -> GateResult:
    """An ERROR for a scenario that could not be measured (no endpoint, no tokenizer, no prompt set)."""
    return GateResult.decide(
        "serving", profile, case_id, (), problems=[problem], simulated=simulated,
        locations={"records": None, "log": None},
        details={"scenario": describe(scenario, api), "contract": []},
    )


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def _latency_line(label: str, stats: Mapping[str, Any]) -> str:
    return (f"{label} (ms): mean {_fmt(stats.get('mean'))}, p50 {_fmt(stats.get('p50'))}, "
            f"p90 {_fmt(stats.get('p90'))}, p99 {_fmt(stats.get('p99'))}")


def endpoint_line(item: Mapping[str, Any]) -> str:
    """One endpoint of a deployment of several URLs, as the log shows it."""
    ttft = item.get("ttft_ms") or {}
    return (f"Endpoint {item.get('endpoint')} ({item.get('role')}): {item.get('requests')} requests, "
            f"{item.get('failed')} failed, {item.get('warmup')} warm-up, output {_fmt(item.get('output_throughput_run_window'))} "
            f"token/s (run window), TTFT p50 {_fmt(ttft.get('p50'))} ms, p99 {_fmt(ttft.get('p99'))} ms")


def log_lines(result: GateResult, metrics: RunMetrics, records: Sequence[RequestRecord],
              batch_latencies_ms: Sequence[float]) -> list[str]:
    """The per-scenario log, in the shape of the usual serving benchmark printout."""
    m = result.metrics
    measured = [r for r in records if not r.warmup]
    lines = [
        "============ Serving Benchmark Result ============",
        f"Profile: {result.profile}",
        f"Scenario: {result.case_id}" + ("  [SIMULATED ENGINE]" if result.simulated else ""),
        f"Successful requests: {m['completed']}",
        f"Failed requests: {m['failed']}",
        f"Benchmark duration (s): {_fmt(metrics.run_window_s)}",
        f"Steady-state window (s): {_fmt(metrics.window_s)} ({metrics.window_used})",
        f"Total input tokens: {sum(r.prompt_tokens or 0 for r in measured)}",
        f"Total generated tokens: {sum(r.n_tokens for r in measured if r.success)}",
        f"Request throughput (req/s): {_fmt(m.get('request_throughput'))}",
        f"Input Throughput: {_fmt(m.get('input_throughput'))} token/s",
        f"Output Throughput: {_fmt(m.get('output_throughput'))} token/s",
        f"Output Throughput (run window, as vLLM prints it): {_fmt(m.get('output_throughput_run_window'))} token/s",
        f"Per node input token thr (tok/s): {_fmt(m.get('input_throughput_per_node'))}",
        f"Per node output token thr (tok/s): {_fmt(m.get('output_throughput_per_node'))}",
        f"Per device output token thr (tok/s/p): {_fmt(m.get('output_throughput_per_device'))}",
    ]
    lines += [_latency_line(label, m.get(name) or {}) for name, label in LATENCY_LINES]
    if batch_latencies_ms:
        lat = np.asarray(batch_latencies_ms)
        lines.append(f"Batch latency (ms): mean {lat.mean():.2f}, p50 {np.percentile(lat, 50):.2f}, "
                     f"p90 {np.percentile(lat, 90):.2f}, p99 {np.percentile(lat, 99):.2f}")
    lines += [endpoint_line(item) for item in result.details.get("endpoints") or ()]
    failures = result.details.get("failures") or {}
    if failures.get("by_kind") or failures.get("notes"):
        lines.append("Failed requests by kind:")
        lines += [f"  {line}" for line in failure_lines(failures)]
    lines += _worker_lines(result)
    lines += [f"check: {check.message}" for check in result.checks]
    lines += [f"contract: {problem}" for problem in result.problems]
    lines += [f"warning: {warning}" for warning in result.warnings]
    lines += [f"Verdict: {result.verdict.upper()}", "=================================================="]
    return lines
