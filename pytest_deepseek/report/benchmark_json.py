"""The serving scenarios of a run as a pytest-benchmark `--benchmark-json` document.

`pytest-benchmark compare` then puts two runs side by side (`pytest-benchmark compare
a/exports/benchmark.json b/exports/benchmark.json`), with its tables, CSV and histograms. The
document has pytest-benchmark's shape (5.x): `machine_info`, `commit_info`, `benchmarks`,
`datetime`, `version`; each benchmark has `group`, `name`, `fullname`, `params`, `param`,
`extra_info`, `options` and `stats` with pytest-benchmark's own statistics (quartiles by its
methods, Tukey and standard-deviation outliers, `ops` = rounds / total) over `data`.

One benchmark per measured serving scenario and profile. Its samples ("rounds") are the TPOT of
each completed request in seconds, (E2E - TTFT) / (N - n1): seconds per output token, lower is
better, `ops` is then output tokens per second of decode. Why per request and not 1 / throughput
per time bucket: every round is then one well-defined measurement of the same operation (one
request's decode), never undefined (a bucket without a token would be an infinite sample) and is
exactly what the TPOT ceilings are decided on; pytest-benchmark's mean of per-bucket inverses would
not be the throughput anyway (the mean of reciprocals is not the reciprocal of the mean). The
throughput figures (the steady-state gate figure, per node, and the run-window figure) and the
scenario's verdict are in `extra_info`. A scenario without any TPOT sample (nothing completed, or
no request past its first token event) has no benchmark, as pytest-benchmark leaves out a
benchmark that errored.

`machine_info` describes the deployment under test (endpoint, model, profiles, plugin version),
`commit_info` the run (its id and start time). Pure computation: no I/O.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

from ..serving.journal import ScenarioStart
from ..serving.metrics import RunMetrics
from ..verdict import GateResult

# The version of pytest-benchmark whose JSON format this follows.
FORMAT_VERSION = "5.3.1"
PROJECT = "pytest-deepseek"
SAMPLE = "tpot_ms"  # the per-request samples used, in ms
UNIT = "s/token"
# Figures copied into each benchmark's extra_info.
EXTRA_FIGURES = ("output_throughput", "output_throughput_per_node", "output_throughput_run_window",
                 "request_throughput", "completed", "failed", "tpot_ms.p50", "tpot_ms.p99", "ttft_ms.p99")
_MS = 1e3


def sample_stats(data: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's `stats` of one benchmark (its definitions; `data` must not be empty)."""
    x = sorted(float(v) for v in data)
    n = len(x)
    mean = statistics.mean(x)
    stddev = statistics.stdev(x) if n > 1 else 0.0
    q1, q3 = _quartiles(x)
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_outliers = sum(1 for v in x if v < low or v > high)
    stddev_outliers = sum(1 for v in x if v < mean - stddev or v > mean + stddev)
    total = sum(x)
    return {
        "min": x[0], "max": x[-1], "mean": mean, "stddev": stddev, "rounds": n,
        "median": statistics.median(x), "iqr": iqr, "q1": q1, "q3": q3,
        "iqr_outliers": iqr_outliers, "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": x[0] if n == 1 else x[bisect_left(x, low)],
        "hd15iqr": x[0] if n == 1 else x[bisect_right(x, high) - 1],
        "ops": n / total if total else 0.0, "total": total,
        "data": [float(v) for v in data], "iterations": 1,
    }


def _quartiles(x: Sequence[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them (Wikipedia's methods 3 and 2) on sorted data."""
    n = len(x)
    if n == 1:
        return x[0], x[0]
    if n % 2 == 0:
        return statistics.median(x[: n // 2]), statistics.median(x[n // 2:])
    k, r = divmod(n, 4)
    if r == 1:
        return 0.25 * x[k - 1] + 0.75 * x[k], 0.75 * x[3 * k] + 0.25 * x[3 * k + 1]
    return 0.75 * x[k] + 0.25 * x[k + 1], 0.25 * x[3 * k + 1] + 0.75 * x[3 * k + 2]


def benchmark_entry(start: ScenarioStart, metrics: RunMetrics, result: GateResult) -> dict[str, Any] | None:
    """The benchmark of one scenario (None when it has no TPOT sample)."""
    samples = [float(v) / _MS for v in metrics.samples.get(SAMPLE, ())]
    if not samples:
        return None
    case = f"{start.profile}:{start.case_id}"
    extra = {name: metrics.value(name) for name in EXTRA_FIGURES}
    extra.update(profile=start.profile, scenario=start.case_id, verdict=result.verdict,
                 simulated=start.target.simulated, window_used=metrics.window_used, unit=UNIT,
                 sample="TPOT of each completed request")
    return {
        "group": case,
        "name": start.nodeid.rpartition("::")[2] or case,
        "fullname": start.nodeid,
        "params": {"profile": start.profile, "scenario": start.case_id},
        "param": case,
        "extra_info": extra,
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": int(start.planned),
                    "max_time": start.scenario.duration_s, "min_time": None, "warmup": start.scenario.warmup > 0},
        "stats": sample_stats(samples),
    }


def benchmark_document(run: Mapping[str, Any], benchmarks: Sequence[Mapping[str, Any]], when: str
                       ) -> dict[str, Any]:
    """The `--benchmark-json` document of a run: `run` is summary.json's run header, `when` the time
    (ISO 8601) the document stands for."""
    machine = {key: run.get(key) for key in ("endpoint", "model", "simulated", "profiles", "tokenizer",
                                             "plugin_version")}
    commit = {"id": run.get("id"), "time": run.get("started"), "author_time": run.get("started"),
              "dirty": False, "project": PROJECT, "branch": ",".join(run.get("profiles") or ())}
    return {"machine_info": machine, "commit_info": commit, "benchmarks": [dict(b) for b in benchmarks],
            "datetime": when, "version": FORMAT_VERSION}
