"""Send one request synchronously (for cheap endpoint checks and tools)."""

from __future__ import annotations

import asyncio
import time
import uuid

from ..credentials import KeyLike
from ..tls import TlsPolicy
from .client import make_http_client, send_request
from .records import RequestRecord, RequestSpec


def send_one(base_url: str, spec: RequestSpec, *, api_key: KeyLike = None, timeout_s: float = 60.0,
             continuous_usage: bool = False, tls: TlsPolicy | None = None) -> RequestRecord:
    """Stream `spec` to `base_url` and return its record (never raises for server problems).
    HTTPS is verified as `tls` says (default: the system's CAs)."""

    async def go() -> RequestRecord:
        async with make_http_client(base_url, concurrency=1, api_key=api_key, timeout_s=timeout_s, tls=tls) as http:
            return await send_request(http, spec, request_id=f"probe-{uuid.uuid4().hex[:8]}",
                                      t_queued=time.perf_counter_ns(), continuous_usage=continuous_usage)

    return asyncio.run(go())
