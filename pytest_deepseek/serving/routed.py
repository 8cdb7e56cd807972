"""Sending to a deployment of several URLs: one HTTP client per replica with a `Router` choosing the
replica of each request, and the wake-up that sends one request to every URL before a measured run.

Everything here is opened inside the event loop that sends (a load process has its own), from the
picklable `ServingTarget` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from ..fingerprint import redacted_url
from .client import StreamingClient, make_http_client, send_request
from .records import RequestRecord, RequestSpec
from .replicas import Router, wake_targets
from .spec import REPLICA

if TYPE_CHECKING:
    from .measure import ServingTarget

OnStart = Callable[[RequestRecord], None]


class ReplicaClients:
    """The HTTP clients of a target's replicas, opened together (`async with`); `send` routes each
    request with the target's routing policy and notes in its record the endpoint it went to."""

    def __init__(self, target: "ServingTarget", *, pool: int) -> None:
        self.target = target
        self.pool = pool  # connections per replica: never fewer than requests that may be in flight
        self.router = Router(len(target.replica_urls()), target.routing)
        self.labelled = len(target.endpoint_urls()) > 1  # records say where they went
        self._clients: list[StreamingClient] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> "ReplicaClients":
        target = self.target
        for url in target.replica_urls():
            client = make_http_client(url, concurrency=self.pool, api_key=target.api_key,
                                      deadlines=target.deadlines, tls=target.tls)
            self._clients.append(await self._stack.enter_async_context(client))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self._stack.aclose()

    async def send(self, spec: RequestSpec, *, request_id: str, t_queued: int,
                   count_tokens: Callable[[str], int] | None, continuous_usage: bool,
                   on_start: OnStart | None) -> RequestRecord:
        """Send `spec` to the replica the router picks (see `client.send_request`)."""
        if not self.labelled:
            return await send_request(self._clients[0], spec, request_id=request_id, t_queued=t_queued,
                                      count_tokens=count_tokens, continuous_usage=continuous_usage, on_start=on_start)
        index = self.router.pick()

        def started(record: RequestRecord) -> None:
            record.endpoint = index  # before anyone sees it: a request cut in flight keeps it too
            if on_start is not None:
                on_start(record)

        try:
            return await send_request(self._clients[index], spec, request_id=request_id, t_queued=t_queued,
                                      count_tokens=count_tokens, continuous_usage=continuous_usage, on_start=started)
        finally:
            self.router.release(index)


def endpoint_role(target: "ServingTarget", index: int) -> str:
    """`replica 2 of 3 (URL)` or `warm-up endpoint 1 of 32 (URL)`, the URL redacted, for messages."""
    replicas = len(target.replica_urls())
    url = redacted_url(target.endpoint_urls()[index])
    if index < replicas:
        return f"{REPLICA} {index + 1} of {replicas} ({url})"
    return f"warm-up endpoint {index - replicas + 1} of {len(target.warmup_urls)} ({url})"


async def wake(target: "ServingTarget", specs: Sequence[RequestSpec], *, request_prefix: str,
               on_record: Callable[[RequestRecord], None]) -> str | None:
    """Send `specs` together, one to each endpoint `replicas.wake_targets` names (every URL gets one
    request and no more at once), each record to `on_record`. Returns what failed (each endpoint
    that did not answer its warm-up, named with its URL redacted), or None when all answered."""
    woken = wake_targets(len(target.replica_urls()), len(target.warmup_urls))
    urls = target.endpoint_urls()

    async def one(index: int, spec: RequestSpec) -> RequestRecord:
        async with make_http_client(urls[index], concurrency=1, api_key=target.api_key,
                                    deadlines=target.deadlines, tls=target.tls) as http:
            record = await send_request(http, spec, request_id=f"{request_prefix}-{spec.index}",
                                        t_queued=time.perf_counter_ns())
        record.endpoint = index
        on_record(record)
        return record

    records = await asyncio.gather(*(one(index, spec) for index, spec in zip(woken, specs)))
    failed = [f"{endpoint_role(target, index)} failed its warm-up request ({record.error_kind}: "
              f"{(record.error_detail or '').replace(urls[index], redacted_url(urls[index]))})"
              for index, record in zip(woken, records) if not record.success]
    return "; ".join(failed) or None


def wake_endpoints(target: "ServingTarget", specs: Sequence[RequestSpec], *, request_prefix: str,
                   on_record: Callable[[RequestRecord], None]) -> str | None:
    """`wake` on an event loop of its own (before the measured run opens its clients)."""
    return asyncio.run(wake(target, specs, request_prefix=request_prefix, on_record=on_record))
