"""From one run's records to its figures, its decided floors and ceilings, and its contract problems.

Pure computation (no I/O): the same judgement serves the early-stop looks during a run and the
final verdict after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..tokenizers import TextTokenizer
from ..verdict import Check, combine
from . import checks as checks_mod
from .contract import ClientHealth, ContractViolation, check_contract
from .load import LoadResult, StopCheck
from .measure import ServingTarget
from .metric_names import base_metric
from .metrics import RunMetrics, bucket_series, compute_run_metrics
from .records import RequestRecord, RunTimeline
from .spec import Scenario

EARLY_STOP_LOOK_EVERY = 0.05  # look at the verdict every 5% of the planned prompts
TARGET_BUCKETS = 40  # throughput buckets per window: 1 s each on long runs, shorter on short ones
CHECK_KIND = {">=": "floor", "<=": "ceiling"}


def bucket_seconds(metrics: RunMetrics) -> float:
    """Bucket width for the throughput series of a run's window (see `bucket_seconds_for`)."""
    return bucket_seconds_for(metrics.window_s)


def bucket_seconds_for(window_s: float | None) -> float:
    """Bucket width for a window: 1 s, or window/40 (>= 10 ms) for windows shorter than 40 s."""
    if not window_s:
        return 1.0
    return min(1.0, max(0.01, window_s / TARGET_BUCKETS))


def min_batch_seconds(scenario: Scenario, target: ServingTarget) -> float:
    """Shortest throughput batch: the scenario's, else 0 for the simulator (no slow drifts to
    capture), else the checks' default (`checks.MIN_BATCH_S`) for real servers."""
    if scenario.min_batch_s is not None:
        return scenario.min_batch_s
    return 0.0 if target.simulated else checks_mod.MIN_BATCH_S


def planned_looks(scenario: Scenario) -> int:
    """Looks at the verdict during the run (each tested at the corrected confidence)."""
    return max(1, int(round(1 / EARLY_STOP_LOOK_EVERY))) if scenario.early_stop else 1


def look_every(measured: int) -> int:
    """Measured records between two looks."""
    return max(10, int(measured * EARLY_STOP_LOOK_EVERY))


@dataclass(frozen=True)
class Judgement:
    """The figures of a run and the decision on each of its floors and ceilings."""

    metrics: RunMetrics
    results: list[checks_mod.CheckResult]


def judge(records: Sequence[RequestRecord], timeline: RunTimeline, scenario: Scenario, target: ServingTarget,
          looks: int) -> Judgement:
    """Compute the run's metrics over `timeline` and decide every floor and ceiling of `scenario`."""
    metrics = compute_run_metrics(records, timeline, nodes=target.nodes, devices_per_node=target.devices_per_node,
                                  slo=scenario.slo)
    bucket_s = bucket_seconds(metrics)
    buckets = bucket_series(records, metrics, bucket_s=bucket_s)
    for name in checks_mod.throughput_names():  # a run cut before its first measured request has no window
        buckets.setdefault(base_metric(name), np.zeros(0))
    results = checks_mod.evaluate_checks(
        metrics, buckets, floors=scenario.floors,
        ceilings=scenario.ceilings, confidence=scenario.confidence, looks=looks, bucket_s=bucket_s,
        min_batch_s=min_batch_seconds(scenario, target),
    )
    return Judgement(metrics, results)


def early_stop(scenario: Scenario, target: ServingTarget, looks: int,
               on_look: Callable[[str], None] | None = None) -> StopCheck | None:
    """The look that ends a run once every check is decided (None without early stopping or checks);
    `on_look` hears each look's verdict so far (`combine` of the checks: an undecided check makes it
    inconclusive)."""
    if not scenario.early_stop or not (scenario.floors or scenario.ceilings):
        return None

    def should_stop(records: Sequence[RequestRecord], timeline: RunTimeline) -> bool:
        # `timeline` is the look's: the window ends at the moment the snapshot was taken.
        results = judge(records, timeline, scenario, target, looks).results
        if on_look is not None:
            on_look(combine([r.verdict for r in results]))
        return checks_mod.decided(results)

    return should_stop


def deciding_timeline(load: LoadResult) -> RunTimeline:
    """The window a run is judged on. A run stopped early is judged on the window of the look that
    decided it (its figures and its verdict agree); requests still in flight then count their
    tokens inside that window."""
    if load.stopped_early and load.deciding_timeline is not None:
        return load.deciding_timeline
    return load.timeline


def retokenized_counts(records: Sequence[RequestRecord], tokenizer: TextTokenizer | None) -> dict[int, int] | None:
    """The client's own count of each measured successful answer's tokens (index -> count), for the
    usage cross-check; None without a tokenizer."""
    if tokenizer is None:
        return None
    return {r.index: len(tokenizer.encode(r.reasoning_text + r.text)) for r in records
            if r.success and not r.warmup and not r.approximate}


def contract_violations(scenario: Scenario, records: Sequence[RequestRecord], health: ClientHealth,
                        retokenized: Mapping[int, int] | None) -> list[ContractViolation]:
    """The workload contract of METRICS.md on a finished run (exact lengths only where the prompt set
    was built to them; the client held to the scenario's `client_health:` limits)."""
    exact = scenario.exact_lengths
    return check_contract(
        records,
        input_len=scenario.input_len if exact else None,
        forced_output_len=scenario.output_len if exact and scenario.force_output_len else None,
        retokenized=retokenized,
        error_budget=scenario.error_budget,
        client_health=health,
        client_limits=scenario.client_limits,
    )


def check_name(result: checks_mod.CheckResult) -> str:
    """`floor.output_throughput_per_node`, `ceiling.ttft_ms.p99`: unique within a scenario (a metric
    has at most one floor and one ceiling)."""
    return f"{CHECK_KIND[result.op]}.{result.metric}"


def as_check(result: checks_mod.CheckResult) -> Check:
    """One decided threshold in the shape every gate reports."""
    return Check(
        name=check_name(result), verdict=result.verdict, message=result.message, metric=result.metric,
        op=result.op, threshold=result.threshold, value=result.value, low=result.low, high=result.high,
        details={"method": result.method, "confidence": result.confidence, "more_needed": result.more_needed,
                 "more_unit": result.more_unit},
    )
