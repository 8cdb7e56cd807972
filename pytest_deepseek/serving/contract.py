"""The workload contract (METRICS.md): checks that must hold before any figure is trusted.

A violation is an error of the measurement, not a pass or fail of the deployment. Violations
whose `client_bound` flag is set mean the load generator, not the server, limited the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from pytest_deepseek.serving.records import RequestRecord
from pytest_deepseek.serving.spec import ClientLimits

# An asyncio client that stalls its event loop delays reading tokens (TTFT and chunk gaps grow)
# and delays sending (the load it offers falls short). The limits are `ClientLimits` (the
# thresholds file's `client_health:`); what counts as a stall is fixed here.
STALL_MS = 50.0  # a wake-up later than this is a stall

if TYPE_CHECKING:
    from pytest_deepseek.serving.load import ClientHealthSample

EXAMPLES = 5  # record indices shown per violation


@dataclass(frozen=True, slots=True)
class ClientHealth:
    """What the load generator measured about itself during the run (None = not measured)."""

    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None
    stalled_fraction: float | None = None  # time lost to stalls (wake-ups later than STALL_MS) / run time
    schedule_lag_p99_ms: float | None = None  # open loop only
    achieved_concurrency: float | None = None
    target_concurrency: float | None = None
    achieved_rate: float | None = None  # requests/s
    target_rate: float | None = None  # requests/s; inf (all at once) is not checked
    cpu_fraction: float | None = None  # client process CPU time / wall time, in cores
    workers: tuple["ClientHealth", ...] = ()  # each load process's own health, when there were several
    where: str | None = None  # a load worker on a cluster node: where, and its clock against the coordinator's
    clock_offset_ms: float | None = None
    clock_uncertainty_ms: float | None = None
    clock_drift_ms: float | None = None

    @classmethod
    def of(cls, sample: "ClientHealthSample") -> "ClientHealth":
        """The summary of what the load generator sampled about itself during the measured phase.
        With several load processes, a process-level figure (event-loop lag, stalls, schedule lag,
        CPU of one core) is the worst process's: one saturated process is enough to bind the run;
        the achieved load is the whole run's."""
        if sample.workers:
            each = tuple(cls.of(worker) for worker in sample.workers)
            whole = cls._of_one(sample)
            return dataclasses.replace(
                whole, workers=each, loop_lag_p99_ms=_worst(h.loop_lag_p99_ms for h in each),
                loop_lag_max_ms=_worst(h.loop_lag_max_ms for h in each),
                stalled_fraction=_worst(h.stalled_fraction for h in each),
                schedule_lag_p99_ms=_worst(h.schedule_lag_p99_ms for h in each),
                cpu_fraction=_worst(h.cpu_fraction for h in each))
        return cls._of_one(sample)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ClientHealth":
        """Inverse of `dataclasses.asdict`."""
        values = dict(data)
        values["workers"] = tuple(cls.from_json(w) for w in values.get("workers") or ())
        return cls(**values)

    @classmethod
    def _of_one(cls, sample: "ClientHealthSample") -> "ClientHealth":

        def p99(values: Sequence[float]) -> float | None:
            return float(np.percentile(values, 99)) if values else None

        stalled_ms = sum(lag for lag in sample.loop_lag_ms if lag > STALL_MS)
        wall_ms = sample.wall_s * 1000
        return cls(
            loop_lag_p99_ms=p99(sample.loop_lag_ms),
            loop_lag_max_ms=max(sample.loop_lag_ms) if sample.loop_lag_ms else None,
            stalled_fraction=stalled_ms / wall_ms if wall_ms > 0 else None,
            schedule_lag_p99_ms=p99(sample.schedule_lag_ms),
            achieved_concurrency=sample.mean_in_flight or None,
            target_concurrency=float(sample.target_concurrency) if sample.target_concurrency else None,
            achieved_rate=sample.achieved_rate,
            target_rate=sample.target_rate,
            cpu_fraction=sample.cpu_s / sample.wall_s if sample.wall_s > 0 else None,
            where=sample.where, clock_offset_ms=sample.clock_offset_ms,
            clock_uncertainty_ms=sample.clock_uncertainty_ms, clock_drift_ms=sample.clock_drift_ms,
        )


def _worst(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


@dataclass(frozen=True, slots=True)
class ContractViolation:
    """One broken contract term: a stable code, a plain-words message, how many requests (or 1
    for run-level terms), some example record indices, and whether it marks the run client-bound."""

    code: str
    message: str
    count: int
    examples: tuple[int, ...] = ()
    client_bound: bool = False


def is_client_bound(violations: Sequence[ContractViolation]) -> bool:
    """True when any violation says the client was the bottleneck."""
    return any(v.client_bound for v in violations)


def _examples(pairs: list[tuple[int, str]]) -> str:
    return "; ".join(f"request {i}: {t}" for i, t in pairs[:EXAMPLES])


def _prompt_terms(ok: list[RequestRecord], input_len: int | None) -> list[ContractViolation]:
    out: list[ContractViolation] = []
    checked = 0
    wrong: list[tuple[int, str]] = []
    missing: list[int] = []
    for r in ok:
        target = input_len if input_len is not None else r.input_len
        if target is None:
            continue
        checked += 1
        if r.prompt_tokens is None:
            missing.append(r.index)
        elif r.prompt_tokens != target:
            wrong.append((r.index, f"{r.prompt_tokens} prompt tokens instead of {target}"))
    if wrong:
        out.append(ContractViolation(
            "prompt_length",
            f"{len(wrong)} of {checked} successful requests had a prompt length different from "
            f"the target ({_examples(wrong)}); the workload is not the one asked for",
            len(wrong), tuple(i for i, _ in wrong[:EXAMPLES])))
    if missing:
        out.append(ContractViolation(
            "prompt_usage_missing",
            f"{len(missing)} of {checked} successful requests came back without "
            f"usage.prompt_tokens, so the prompt length cannot be verified",
            len(missing), tuple(missing[:EXAMPLES])))
    return out


def _output_terms(ok: list[RequestRecord], forced_output_len: int | None) -> list[ContractViolation]:
    forced = [r for r in ok if r.forced or forced_output_len is not None]
    wrong: list[tuple[int, str]] = []
    checked = 0
    for r in forced:
        target = forced_output_len if forced_output_len is not None else r.max_tokens
        if r.completion_tokens is None or not target:
            continue
        checked += 1
        if r.completion_tokens != target:
            reason = f", finish_reason {r.finish_reason!r}" if r.finish_reason else ""
            wrong.append((r.index, f"{r.completion_tokens} output tokens instead of {target}{reason}"))
    if not wrong:
        return []
    return [ContractViolation(
        "output_length_not_forced",
        f"server cannot force output length: {len(wrong)} of {checked} requests sent with "
        f"ignore_eos/min_tokens returned a different completion_tokens ({_examples(wrong)})",
        len(wrong), tuple(i for i, _ in wrong[:EXAMPLES]))]


def _retokenize_terms(ok: list[RequestRecord], retokenized: Mapping[int, int] | None,
                      tolerance: float) -> list[ContractViolation]:
    if not retokenized:
        return []
    wrong: list[tuple[int, str]] = []
    checked = 0
    for r in ok:
        client = retokenized.get(r.index)
        if client is None or r.completion_tokens is None or r.approximate:
            continue
        checked += 1
        usage = r.completion_tokens
        if abs(usage - client) > tolerance * max(usage, 1):
            wrong.append((r.index, f"usage says {usage}, re-tokenization {client}"))
    if not wrong:
        return []
    return [ContractViolation(
        "usage_mismatch",
        f"{len(wrong)} of {checked} requests: server usage.completion_tokens and client "
        f"re-tokenization differ by more than {tolerance:.1%} ({_examples(wrong)})",
        len(wrong), tuple(i for i, _ in wrong[:EXAMPLES]))]


def _forcing_terms(measured: list[RequestRecord]) -> list[ContractViolation]:
    """Requests that asked for an exact length (ignore_eos/min_tokens) and were refused for it."""
    refused = [r for r in measured if r.forced and not r.success and r.status in (400, 422)]
    if not refused:
        return []
    detail = (refused[0].error_detail or "")[:200]
    return [ContractViolation(
        "output_length_not_forced",
        f"server cannot force output length: {len(refused)} request(s) asking for an exact length "
        f"(ignore_eos, min_tokens) were refused ({detail}); set force_output_len: false for this server "
        "(output lengths then vary and are reported as measured)",
        len(refused), tuple(r.index for r in refused[:EXAMPLES]))]


def _error_terms(measured: list[RequestRecord], budget: float) -> list[ContractViolation]:
    failed = [r for r in measured if not r.success and r.error_kind is not None]
    finished = sum(1 for r in measured if r.success) + len(failed)
    if not finished or len(failed) / finished <= budget:
        return []
    kinds: dict[str, int] = {}
    for r in failed:
        kinds[r.error_kind or "unknown"] = kinds.get(r.error_kind or "unknown", 0) + 1
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return [ContractViolation(
        "error_budget",
        f"{len(failed)} of {finished} requests failed ({len(failed) / finished:.2%}, budget "
        f"{budget:.2%}): {by_kind}",
        len(failed), tuple(r.index for r in failed[:EXAMPLES]))]


def _client_terms(h: ClientHealth, limits: ClientLimits) -> list[ContractViolation]:
    out: list[ContractViolation] = []

    def bound(code: str, message: str, limit: str) -> None:
        out.append(ContractViolation(code, f"client-bound: {message} (client_health.{limit})", 1, (), True))

    if h.loop_lag_p99_ms is not None and h.loop_lag_p99_ms > limits.max_loop_lag_p99_ms:
        bound("client_loop_lag", f"event-loop lag p99 {h.loop_lag_p99_ms:.1f} ms exceeds "
              f"{limits.max_loop_lag_p99_ms:g} ms; token timings include client delay", "max_loop_lag_p99_ms")
    if h.stalled_fraction is not None and h.stalled_fraction > limits.max_stalled_fraction:
        worst = f", the longest {h.loop_lag_max_ms:.0f} ms" if h.loop_lag_max_ms is not None else ""
        bound("client_loop_stall", f"the event loop was stalled (> {STALL_MS:g} ms) for {h.stalled_fraction:.1%} "
              f"of the run{worst}, more than {limits.max_stalled_fraction:.0%}", "max_stalled_fraction")
    if h.schedule_lag_p99_ms is not None and h.schedule_lag_p99_ms > limits.max_schedule_lag_p99_ms:
        bound("client_schedule_lag", f"requests were sent late: schedule lag p99 "
              f"{h.schedule_lag_p99_ms:.1f} ms exceeds {limits.max_schedule_lag_p99_ms:g} ms",
              "max_schedule_lag_p99_ms")
    if (h.achieved_concurrency is not None and h.target_concurrency
            and h.achieved_concurrency < limits.min_concurrency_ratio * h.target_concurrency):
        bound("client_concurrency", f"achieved concurrency {h.achieved_concurrency:.1f} is below "
              f"{limits.min_concurrency_ratio:.0%} of the target {h.target_concurrency:g}", "min_concurrency_ratio")
    if (h.achieved_rate is not None and h.target_rate and h.target_rate != float("inf")
            and h.achieved_rate < limits.min_rate_ratio * h.target_rate):
        bound("client_rate", f"achieved rate {h.achieved_rate:.2f} req/s is below "
              f"{limits.min_rate_ratio:.0%} of the target {h.target_rate:g} req/s", "min_rate_ratio")
    if h.cpu_fraction is not None and h.cpu_fraction > limits.max_cpu_fraction:
        bound("client_cpu", f"client CPU at {h.cpu_fraction:.0%} of a core, above "
              f"{limits.max_cpu_fraction:.0%}; the client may be the bottleneck", "max_cpu_fraction")
    return out


def check_contract(
    records: Sequence[RequestRecord],
    *,
    input_len: int | None = None,
    forced_output_len: int | None = None,
    retokenized: Mapping[int, int] | None = None,
    retokenize_tolerance: float = 0.02,
    error_budget: float = 0.01,
    client_health: ClientHealth | None = None,
    client_limits: ClientLimits = ClientLimits(),
) -> list[ContractViolation]:
    """Check the workload contract on the measured (non-warmup) records of a run.

    `input_len` / `forced_output_len` override each record's own target (`input_len`,
    `max_tokens` when `forced`); None means use the record's. `retokenized` maps a record's
    `index` to the client's own count of its output tokens; they must agree with
    usage.completion_tokens within `retokenize_tolerance` (relative). Only successful requests
    are checked for lengths; the error budget is a fraction of finished requests. The client's
    `client_health` is held to `client_limits`.
    """
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.success]
    out = _forcing_terms(measured)
    out += _prompt_terms(ok, input_len)
    out += _output_terms(ok, forced_output_len)
    out += _retokenize_terms(ok, retokenized, retokenize_tolerance)
    out += _error_terms(measured, error_budget)
    if client_health is not None:
        out += _client_terms(client_health, client_limits)
    return out
