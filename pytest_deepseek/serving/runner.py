"""Run one serving scenario end to end: prompts → load → records → metrics → checks → verdict.

This is the only serving module that does I/O beyond the client: it appends request records to the
run's `records.jsonl` as they finish, writes the scenario log, and reports progress.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..report.store import RunFolder
from ..thresholds import Scenario
from ..tokenizers import TextTokenizer
from . import checks as checks_mod
from .client import make_http_client, send_request
from .contract import STALL_MS, ClientHealth, ContractViolation, check_contract, is_client_bound
from .endpoint_api import EndpointError, tokenize
from .load import LoadResult, LoadRunner, LoadShape
from .metrics import RunMetrics, bucket_series, compute_run_metrics
from .records import ApiKind, RequestRecord, RequestSpec, RunTimeline
from .workload import PromptBuilder, WorkloadParams, build_prompt_set, prompt_set_hash, to_requests

ProgressFn = Callable[[str], None]
EARLY_STOP_LOOK_EVERY = 0.05  # look at the verdict every 5% of the planned prompts
TARGET_BUCKETS = 40  # throughput buckets per window: 1 s each on long runs, shorter on short ones


def bucket_seconds(metrics: RunMetrics) -> float:
    """Bucket width for the throughput series: 1 s, or window/40 (>= 10 ms) for short windows."""
    if not metrics.window_s:
        return 1.0
    return min(1.0, max(0.01, metrics.window_s / TARGET_BUCKETS))


@dataclass(frozen=True)
class ServingTarget:
    """Where and how to send: the checked endpoint plus the profile's topology."""

    base_url: str
    model: str
    api: ApiKind
    api_key: str | None = None
    simulated: bool = False
    has_tokenize: bool = False
    nodes: int = 1
    devices_per_node: int = 1
    timeout_s: float = 600.0


@dataclass
class ServingOutcome:
    """What a serving test reports: the summary.json entry and the verdict behind it."""

    result: dict[str, Any]
    verdict: str  # pass | fail | inconclusive | error
    problems: list[str] = field(default_factory=list)

    def failure_text(self) -> str:
        """Expected vs measured for each failing check, plus where the raw records are."""
        lines = [f"{self.verdict.upper()}: {self.result.get('profile')} {self.result.get('scenario_id')}"
                 + (" [SIMULATED]" if self.result.get("simulated") else "")]
        for check in self.result.get("checks", []):
            if check["verdict"] != "pass":
                lines.append(f"  {check['message']}")
        lines.extend(f"  {p}" for p in self.problems)
        lines.append(f"  records: {self.result.get('records')}")
        lines.append(f"  log: {self.result.get('log')}")
        return "\n".join(lines)


def _count_offset(target: ServingTarget, builder: PromptBuilder) -> tuple[int, str]:
    """Tokens the server counts beyond the client's count (BOS, template differences)."""
    if not target.has_tokenize:
        return 0, "client tokenizer (server has no /tokenize)"
    probe = "The quick brown fox jumps over the lazy dog"
    try:
        if target.api == "chat":
            messages = [{"role": "user", "content": probe}]
            server = tokenize(target.base_url, target.model, messages, target.api_key)
        else:
            server = tokenize(target.base_url, target.model, probe, target.api_key)
    except EndpointError as exc:
        return 0, f"client tokenizer (/tokenize failed: {exc})"
    if server is None:
        return 0, "client tokenizer (server has no /tokenize)"
    return server - builder.count(probe), "aligned with the server's /tokenize"


def prompt_seed(profile: str, scenario_id: str, seed: int) -> int:
    """The prompt set's seed: different for every scenario (scenarios sharing an input length must
    not send the same prompts, or a server's prefix cache serves the second from the first)."""
    digest = hashlib.sha256(f"{profile}/{scenario_id}/{seed}".encode()).hexdigest()
    return int(digest[:12], 16)


def build_requests(scenario: Scenario, target: ServingTarget, tokenizer: TextTokenizer | None,
                   seed: int | None = None) -> tuple[list[RequestSpec], list[RequestSpec], dict[str, Any]]:
    """Warmup and measured request specs for `scenario`, and facts about the prompt set."""
    builder = PromptBuilder(tokenizer, target.api) if tokenizer is not None else None
    alignment = "none"
    if builder is not None:
        offset, alignment = _count_offset(target, builder)
        builder.count_offset = offset
    measured_count = scenario.num_prompts
    if scenario.mode == "batch":
        measured_count = (scenario.batch_size or 1) * (scenario.num_iters or 1)
    params = WorkloadParams(
        dataset=scenario.dataset, count=scenario.warmup + measured_count, input_len=scenario.input_len,
        output_len=scenario.output_len, seed=scenario.seed if seed is None else seed, prefix_len=scenario.prefix_len,
        dataset_path=scenario.dataset_path, api=target.api,
        count_offset=builder.count_offset if builder is not None else 0,
    )
    items = build_prompt_set(params, builder)
    specs = to_requests(items, api=target.api, model=target.model, warmup=scenario.warmup,
                        force_output_len=scenario.force_output_len)
    facts = {"prompt_set_hash": prompt_set_hash(items), "prompt_seed": params.seed,
             "prompt_alignment": alignment, "count_offset": params.count_offset}
    return specs[: scenario.warmup], specs[scenario.warmup:], facts


class RecordWriter:
    """Appends each record to records.jsonl as it finishes: one write() per record, no buffering,
    so a killed run keeps every request it completed."""

    def __init__(self, folder: RunFolder, nodeid: str, scenario_id: str) -> None:
        self.nodeid = nodeid
        self.scenario_id = scenario_id
        folder.path.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(folder.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: RequestRecord) -> None:
        line = record.to_json_dict()
        line["nodeid"] = self.nodeid
        line["scenario"] = self.scenario_id
        # No NaN-scrubbing pass: a record holds only ints, strings, bools and lists of them.
        os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Progress:
    """A progress line at most every `every_s` seconds (and at the end)."""

    def __init__(self, label: str, total: int, emit: ProgressFn | None, every_s: float = 5.0) -> None:
        self.label = label
        self.total = total
        self.emit = emit
        self.every_s = every_s
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.t0 = time.perf_counter()
        self._last = self.t0
        self.emitted = -1

    def update(self, record: RequestRecord) -> None:
        if record.warmup:
            return
        if self.done == 0 and record.t_send:
            self.t0 = record.t_send / 1e9  # the measured phase starts here (same perf_counter clock)
        self.done += 1
        self.failed += 0 if record.success else 1
        self.tokens += record.n_tokens
        now = time.perf_counter()
        if self.emit is not None and now - self._last >= self.every_s:
            self._last = now
            self.emit(self.line(now))
            self.emitted = self.done

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self.t0
        rate = self.tokens / elapsed if elapsed > 0 else 0.0
        return (f"[deepseek] {self.label}: {self.done}/{self.total} requests, {self.failed} failed, "
                f"{elapsed:.1f}s, ~{rate:,.0f} output tok/s")


def _health(load: LoadResult) -> ClientHealth:
    h = load.health

    def p99(values: list[float]) -> float | None:
        return float(np.percentile(values, 99)) if values else None

    stalled_ms = sum(lag for lag in h.loop_lag_ms if lag > STALL_MS)
    return ClientHealth(
        loop_lag_p99_ms=p99(h.loop_lag_ms),
        loop_lag_max_ms=max(h.loop_lag_ms) if h.loop_lag_ms else None,
        stalled_fraction=stalled_ms / (h.wall_s * 1000) if h.wall_s > 0 else None,
        schedule_lag_p99_ms=p99(h.schedule_lag_ms),
        achieved_concurrency=h.mean_in_flight or None,
        target_concurrency=float(h.target_concurrency) if h.target_concurrency else None,
        achieved_rate=h.achieved_rate,
        target_rate=h.target_rate,
        cpu_fraction=h.cpu_s / h.wall_s if h.wall_s > 0 else None,
    )


def _shape(scenario: Scenario) -> LoadShape:
    return LoadShape(
        mode=scenario.mode, concurrency=scenario.concurrency, request_rate=scenario.request_rate,
        arrival=scenario.arrival, burstiness=scenario.burstiness, max_concurrency=scenario.max_concurrency,
        batch_size=scenario.batch_size, num_iters=scenario.num_iters, duration_s=scenario.duration_s,
        seed=scenario.seed,
    )


def _pool_size(scenario: Scenario, measured: int) -> int:
    """Connections the client may hold: never fewer than requests that may be in flight at once
    (a smaller pool would make requests wait for a connection after t_send, inside their TTFT)."""
    if scenario.mode == "batch":
        return scenario.batch_size or 1
    if scenario.mode == "open":
        return scenario.max_concurrency or max(1, measured)
    return scenario.concurrency or 1


def min_batch_seconds(scenario: Scenario, target: ServingTarget) -> float:
    """Shortest throughput batch: the scenario's, else 0 for the simulator (no slow drifts to
    capture), else the checks' default (30 s) for real servers."""
    if scenario.min_batch_s is not None:
        return scenario.min_batch_s
    return 0.0 if target.simulated else checks_mod.MIN_BATCH_S


def _early_stop_fn(scenario: Scenario, target: ServingTarget, looks: int
                   ) -> Callable[[list[RequestRecord], RunTimeline], bool] | None:
    if not scenario.early_stop or not (scenario.floors or scenario.ceilings):
        return None

    def should_stop(records: list[RequestRecord], timeline: RunTimeline) -> bool:
        # `timeline` is the look's: the window ends at the moment the snapshot was taken.
        metrics = compute_run_metrics(records, timeline, nodes=target.nodes,
                                      devices_per_node=target.devices_per_node, slo=scenario.slo)
        bucket_s = bucket_seconds(metrics)
        results = checks_mod.evaluate_checks(metrics, bucket_series(records, metrics, bucket_s=bucket_s),
                                             floors=scenario.floors, ceilings=scenario.ceilings,
                                             confidence=scenario.confidence, looks=looks, bucket_s=bucket_s,
                                             min_batch_s=min_batch_seconds(scenario, target))
        return checks_mod.decided(results)

    return should_stop


def _retokenized(records: list[RequestRecord], tokenizer: TextTokenizer | None) -> dict[int, int] | None:
    if tokenizer is None:
        return None
    return {r.index: len(tokenizer.encode(r.reasoning_text + r.text)) for r in records
            if r.success and not r.warmup and not r.approximate}


def scenario_log_lines(result: dict[str, Any], metrics: RunMetrics, load: LoadResult) -> list[str]:
    """The per-scenario log, in the shape of the usual serving benchmark printout."""
    m = result["metrics"]

    def f(value: Any, digits: int = 2) -> str:
        return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    measured = [r for r in load.records if not r.warmup]
    lines = [
        "============ Serving Benchmark Result ============",
        f"Profile: {result['profile']}",
        f"Scenario: {result['scenario_id']}" + ("  [SIMULATED ENGINE]" if result.get("simulated") else ""),
        f"Successful requests: {m['completed']}",
        f"Failed requests: {m['failed']}",
        f"Benchmark duration (s): {f(metrics.run_window_s)}",
        f"Steady-state window (s): {f(metrics.window_s)} ({metrics.window_used})",
        f"Total input tokens: {sum(r.prompt_tokens or 0 for r in measured)}",
        f"Total generated tokens: {sum(r.n_tokens for r in measured if r.success)}",
        f"Request throughput (req/s): {f(m.get('request_throughput'))}",
        f"Input Throughput: {f(m.get('input_throughput'))} token/s",
        f"Output Throughput: {f(m.get('output_throughput'))} token/s",
        f"Output Throughput (run window, as vLLM prints it): {f(m.get('output_throughput_run_window'))} token/s",
        f"Per node input token thr (tok/s): {f(m.get('input_throughput_per_node'))}",
        f"Per node output token thr (tok/s): {f(m.get('output_throughput_per_node'))}",
        f"Per device output token thr (tok/s/p): {f(m.get('output_throughput_per_device'))}",
    ]
    for name, label in (("ttft_ms", "TTFT"), ("ttfo_ms", "TTFO"), ("tpot_ms", "TPOT"), ("e2e_ms", "E2E"),
                        ("chunk_gap_ms", "chunk gap (vLLM ITL)")):
        stats = m.get(name) or {}
        lines.append(f"{label} (ms): mean {f(stats.get('mean'))}, p50 {f(stats.get('p50'))}, "
                     f"p90 {f(stats.get('p90'))}, p99 {f(stats.get('p99'))}")
    if load.batch_latencies_ms:
        lat = np.asarray(load.batch_latencies_ms)
        lines.append(f"Batch latency (ms): mean {lat.mean():.2f}, p50 {np.percentile(lat, 50):.2f}, "
                     f"p90 {np.percentile(lat, 90):.2f}, p99 {np.percentile(lat, 99):.2f}")
    for check in result["checks"]:
        lines.append(f"check: {check['message']}")
    for problem in result["errors"]:
        lines.append(f"contract: {problem}")
    lines.append(f"Verdict: {result['verdict'].upper()}")
    lines.append("==================================================")
    return lines


def run_scenario(
    scenario: Scenario,
    target: ServingTarget,
    *,
    tokenizer: TextTokenizer | None,
    folder: RunFolder,
    nodeid: str,
    profile: str,
    scenario_id: str,
    progress: ProgressFn | None = None,
) -> ServingOutcome:
    """Measure `scenario` against `target` and decide its floors and ceilings."""
    warmup_specs, measured_specs, facts = build_requests(scenario, target, tokenizer,
                                                         seed=prompt_seed(profile, scenario_id, scenario.seed))
    writer = RecordWriter(folder, nodeid, scenario_id)
    meter = Progress(f"{profile}:{scenario_id}", len(measured_specs), progress)
    looks = max(1, int(round(1 / EARLY_STOP_LOOK_EVERY))) if scenario.early_stop else 1
    check_every = max(10, int(len(measured_specs) * EARLY_STOP_LOOK_EVERY))

    def on_record(record: RequestRecord) -> None:
        writer.write(record)
        meter.update(record)

    async def go() -> LoadResult:
        pool = _pool_size(scenario, len(measured_specs))
        async with make_http_client(target.base_url, concurrency=pool, api_key=target.api_key,
                                    timeout_s=target.timeout_s) as http:
            def count_tokens(text: str) -> int:
                return len(tokenizer.encode(text)) if tokenizer is not None else 0

            prefix = f"{folder.run_id}-{scenario_id}"

            async def send(spec: RequestSpec, t_queued: int,
                           on_start: Callable[[RequestRecord], None]) -> RequestRecord:
                return await send_request(http, spec, request_id=f"{prefix}-{spec.index}", t_queued=t_queued,
                                          count_tokens=count_tokens if tokenizer is not None else None,
                                          continuous_usage=scenario.continuous_usage, on_start=on_start,
                                          deadline_s=target.timeout_s)

            runner = LoadRunner(send, _shape(scenario), on_record=on_record,
                                should_stop=_early_stop_fn(scenario, target, looks), check_every=check_every)
            return await runner.run(warmup_specs, measured_specs)

    try:
        load = asyncio.run(go())
    finally:
        writer.close()
    if progress is not None and meter.emitted != meter.done:
        progress(meter.line())
    # A run stopped early is judged on the window of the look that decided it (its figures and its
    # verdict agree); requests that were still in flight then count their tokens inside that window.
    timeline = load.deciding_timeline if load.stopped_early and load.deciding_timeline else load.timeline
    metrics = compute_run_metrics(load.records, timeline, nodes=target.nodes,
                                  devices_per_node=target.devices_per_node, slo=scenario.slo)
    bucket_s = bucket_seconds(metrics)
    check_results = checks_mod.evaluate_checks(
        metrics, bucket_series(load.records, metrics, bucket_s=bucket_s), floors=scenario.floors,
        ceilings=scenario.ceilings, confidence=scenario.confidence, looks=looks, bucket_s=bucket_s,
        min_batch_s=min_batch_seconds(scenario, target),
    )
    forced = scenario.output_len if scenario.force_output_len and scenario.dataset in ("random", "sonnet") else None
    violations = check_contract(
        load.records,
        input_len=scenario.input_len if scenario.dataset in ("random", "sonnet") else None,
        forced_output_len=forced,
        retokenized=_retokenized(load.records, tokenizer),
        error_budget=scenario.error_budget,
        client_health=_health(load),
    )
    verdict = decide_verdict(check_results, violations, scenario.allow_inconclusive)
    result = build_result(scenario, target, metrics, check_results, violations, verdict, load, facts,
                          profile=profile, scenario_id=scenario_id, folder=folder)
    log_path = folder.log_path(nodeid)
    result["log"] = str(log_path)
    log_path.write_text("\n".join(scenario_log_lines(result, metrics, load)) + "\n", encoding="utf-8")
    return ServingOutcome(result=result, verdict=verdict, problems=list(result["errors"]))


def decide_verdict(check_results: list[checks_mod.CheckResult], violations: list[ContractViolation],
                   allow_inconclusive: bool) -> str:
    """error (contract broken) > fail > inconclusive (unless allowed) > pass."""
    if violations:
        return "error"
    overall = checks_mod.overall_verdict(check_results)
    if overall == "inconclusive" and allow_inconclusive:
        return "pass"
    return str(overall)


def build_result(
    scenario: Scenario, target: ServingTarget, metrics: RunMetrics, check_results: list[checks_mod.CheckResult],
    violations: list[ContractViolation], verdict: str, load: LoadResult, facts: dict[str, Any], *,
    profile: str, scenario_id: str, folder: RunFolder,
) -> dict[str, Any]:
    """The summary.json entry of a serving test."""
    description = scenario.describe()
    description["api"] = target.api
    health = _health(load)
    return {
        "kind": "serving",
        "profile": profile,
        "scenario_id": scenario_id,
        "simulated": target.simulated,
        "scenario": description,
        "metrics": metrics.to_dict(),
        "checks": [
            {"metric": c.metric, "op": c.op, "threshold": c.threshold, "value": c.value, "low": c.low,
             "high": c.high, "verdict": c.verdict, "method": c.method, "confidence": c.confidence,
             "more_needed": c.more_needed, "more_unit": c.more_unit, "message": c.message}
            for c in check_results
        ],
        "contract": [{"code": v.code, "message": v.message, "count": v.count, "examples": list(v.examples)}
                     for v in violations],
        "errors": [v.message for v in violations],
        "client": {
            "loop_lag_p99_ms": health.loop_lag_p99_ms, "loop_lag_max_ms": health.loop_lag_max_ms,
            "schedule_lag_p99_ms": health.schedule_lag_p99_ms, "cpu_fraction": health.cpu_fraction,
            "achieved_concurrency": health.achieved_concurrency, "achieved_rate": health.achieved_rate,
            "client_bound": is_client_bound(violations),
        },
        "stopped_early": load.stopped_early,
        "batch_latency_ms": load.batch_latencies_ms or None,
        "nodes": target.nodes,
        "devices_per_node": target.devices_per_node,
        "model": target.model,
        **facts,
        "verdict": verdict,
        "records": str(folder.records_path),
        "log": None,
    }


def setup_error_outcome(case_profile_scenario: Any, target: ServingTarget, problem: str) -> ServingOutcome:
    """An ERROR outcome for a scenario that could not start (bad prompt file, tokenizer problem)."""
    scenario = case_profile_scenario.scenario
    description = scenario.describe()
    description["api"] = target.api
    result = {
        "kind": "serving", "profile": case_profile_scenario.profile.name, "scenario_id": scenario.ident,
        "simulated": target.simulated, "scenario": description, "metrics": {}, "checks": [],
        "contract": [], "errors": [problem], "verdict": "error", "records": None, "log": None,
    }
    return ServingOutcome(result=result, verdict="error", problems=[problem])
