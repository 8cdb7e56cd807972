"""One deployment behind several URLs: which replica each request goes to, which URLs are woken
before the measured phase, and the figures of each endpoint.

A deployment is measured through its replicas (several URLs, no proxy in front: the client routes)
or through one URL (a proxy) while other URLs are only woken up first (the ranks behind it). The
endpoints of a target are numbered once: its replicas first (0 is the target's `base_url`), then
its warm-up-only URLs; a request record carries that number. Pure computation, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import LatencySummary, is_completed, is_failed, request_latencies, run_window
from .records import RequestRecord
from .spec import DEFAULT_ROUTING, REPLICA, ROUTING_POLICIES, WARMUP_ONLY


class Router:
    """Chooses the replica of each request: `pick()` returns its index and counts the request in
    flight there, `release(index)` when the request is over.

    round-robin: in turn. least-outstanding: the replica with the fewest requests in flight; among
    equals, the next in turn, so idle replicas share the work evenly.
    """

    def __init__(self, count: int, policy: str = DEFAULT_ROUTING) -> None:
        if count < 1:
            raise ValueError(f"a router needs at least one replica, got {count}")
        if policy not in ROUTING_POLICIES:
            raise ValueError(f"unknown routing {policy!r}; valid: {', '.join(ROUTING_POLICIES)}")
        self.policy = policy
        self.outstanding = [0] * count  # requests in flight per replica
        self._next = 0  # the replica whose turn it is

    def pick(self) -> int:
        """The replica of the next request (counted in flight until `release`)."""
        count = len(self.outstanding)
        if self.policy == "least-outstanding":
            index = min(range(count), key=lambda i: (self.outstanding[i], (i - self._next) % count))
        else:
            index = self._next
        self._next = (index + 1) % count
        self.outstanding[index] += 1
        return index

    def release(self, index: int) -> None:
        """A request sent to replica `index` is over (done, failed or cancelled)."""
        if self.outstanding[index] <= 0:
            raise ValueError(f"replica {index} has no request in flight")
        self.outstanding[index] -= 1


# ---------------------------------------------------------------------------------------------
# Waking every endpoint before the measured phase


def warmup_count(warmup: int, replicas: int, warmup_only: int) -> int:
    """Warm-up requests a scenario sends: one per URL to wake (`wake_targets`, sent on their own
    connections before the load), then its own `warmup` through the connections it measures on."""
    return len(wake_targets(replicas, warmup_only)) + warmup


def wake_targets(replicas: int, warmup_only: int) -> tuple[int, ...]:
    """The endpoint each of the first warm-up requests wakes (they are sent together, one per
    endpoint, before any other): every replica once when there are several, then every
    warm-up-only URL. The other warm-up requests are routed like measured ones."""
    woken = tuple(range(replicas)) if replicas > 1 else ()
    return woken + tuple(range(replicas, replicas + warmup_only))


# ---------------------------------------------------------------------------------------------
# Figures per endpoint


@dataclass(frozen=True)
class EndpointFigures:
    """What one endpoint of a deployment did in a scenario."""

    endpoint: str  # its URL, redacted
    role: str  # REPLICA or WARMUP_ONLY
    requests: int  # measured requests sent to it (finished or not)
    completed: int
    failed: int
    failed_by_kind: Mapping[str, int] = field(default_factory=dict)
    warmup: int = 0  # warm-up requests sent to it
    output_throughput_run_window: float | None = None  # its completed requests' output tokens / the run window (tok/s), as METRICS.md's figure of that name
    ttft_ms: LatencySummary = LatencySummary()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (summary.json `endpoints`)."""
        return {"endpoint": self.endpoint, "role": self.role, "requests": self.requests,
                "completed": self.completed, "failed": self.failed, "failed_by_kind": dict(self.failed_by_kind),
                "warmup": self.warmup, "output_throughput_run_window": self.output_throughput_run_window,
                "ttft_ms": {"p50": self.ttft_ms.p50, "p99": self.ttft_ms.p99}}


def endpoint_breakdown(records: Sequence[RequestRecord], urls: Sequence[str], replicas: int) -> list[EndpointFigures]:
    """The figures of each endpoint in `urls` (numbered as the records' `endpoint`; the first
    `replicas` are replicas, the others warm-up only). Output throughput is over the scenario's run
    window, so the replicas' figures add up to its run-window throughput."""
    window = run_window(records)
    run_s = (window[1] - window[0]) / 1e9 if window is not None else None
    by_endpoint: dict[int, list[RequestRecord]] = {}
    for record in records:
        if record.endpoint is not None:
            by_endpoint.setdefault(record.endpoint, []).append(record)
    return [_figures(url, REPLICA if index < replicas else WARMUP_ONLY, by_endpoint.get(index, []), run_s)
            for index, url in enumerate(urls)]


def _figures(url: str, role: str, records: Sequence[RequestRecord], run_s: float | None) -> EndpointFigures:
    measured = [r for r in records if not r.warmup]
    completed = [r for r in measured if is_completed(r)]
    failed = [r for r in measured if is_failed(r)]
    by_kind: dict[str, int] = {}
    for r in failed:
        by_kind[str(r.error_kind)] = by_kind.get(str(r.error_kind), 0) + 1
    ttft = [value for r in completed if (value := request_latencies(r)["ttft_ms"]) is not None]
    return EndpointFigures(
        endpoint=url, role=role, requests=len(measured), completed=len(completed), failed=len(failed),
        failed_by_kind=by_kind, warmup=len(records) - len(measured),
        output_throughput_run_window=sum(r.n_tokens for r in completed) / run_s if run_s and role == REPLICA else None,
        ttft_ms=LatencySummary.of(np.asarray(ttft, dtype=float)),
    )
