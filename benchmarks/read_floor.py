"""Read floor: the least client CPU per streamed token that one network read per token event costs here.

METRICS.md times a token event when the network read that carried it returns, so a client that
keeps that definition does at least one `recv` (and its share of an `epoll_wait`) per event when
the server writes one event per chunk. This benchmark measures that floor on this machine, apart
from any HTTP library: a bare `asyncio.Protocol` keeps `--concurrency` keep-alive connections to
the simulator (in its own process, one token per chunk every `--step-ms`), sends streamed
completions back to back, and per read does only what the gate must: one time stamp, then

- `read`: nothing more (the kernel's and the event loop's cost alone);
- `parse`: HTTP/1.1 chunked framing, SSE event split and one JSON decode per event (the least
  a client can do to know which events carry tokens).

It prints output tok/s and the process's user and system CPU per token for each mode, on the
standard asyncio loop and on uvloop when it is installed. Compare with the gate's in-run figure
(`python benchmarks/client_capacity.py --gate`): the gap between the two is what any faster
client could still remove; the floor itself is not removable without reading less often, which
would move time stamps later than the bytes arrived.

    python benchmarks/read_floor.py [--concurrency 64] [--seconds 8] [--step-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from time import perf_counter_ns
from urllib.parse import urlsplit

from pytest_deepseek.sim.launcher import start_sim

OUTPUT_LEN = 512
WARMUP_S = 2.0


class StreamCounter(asyncio.Protocol):
    """One keep-alive connection sending streamed completions back to back, counting token events."""

    def __init__(self, request: bytes, parse: bool, totals: dict[str, int]) -> None:
        self.request = request
        self.parse = parse
        self.totals = totals
        self.buffer = bytearray()
        self.in_body = False
        self.chunk_left = -1  # bytes of the current chunk still to come (+2 for its CRLF); -1: a size line is next
        self.pending = b""  # an unfinished SSE event
        self.transport: asyncio.Transport | None = None
        self.times: list[int] = []  # one time stamp per read, as the gate keeps

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.buffer.clear()
        self.in_body = False
        self.chunk_left = -1
        self.pending = b""
        self.times.clear()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = perf_counter_ns()
        self.times.append(now)
        if not self.parse:
            self.totals["tokens"] += data.count(b"data: {")  # one JSON event per token (no usage asked)
            if data.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
                self.send()
            return
        buffer = self.buffer
        buffer += data
        if not self.in_body:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del buffer[:end + 4]
            self.in_body = True
        while buffer:
            if self.chunk_left < 0:
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(buffer[:line_end], 16)
                del buffer[:line_end + 2]
                if size == 0:
                    self.send()
                    return
                self.chunk_left = size + 2
            take = min(self.chunk_left, len(buffer))
            self.events(bytes(buffer[:take]))
            del buffer[:take]
            self.chunk_left -= take
            if self.chunk_left == 0:
                self.chunk_left = -1

    def events(self, data: bytes) -> None:
        text = self.pending + data
        *complete, self.pending = text.split(b"\n\n")
        for event in complete:
            event = event.strip(b"\r\n")
            if event.startswith(b"data: ") and event != b"data: [DONE]" and json.loads(event[6:]).get("choices"):
                self.totals["tokens"] += 1


async def measure(base_url: str, model: str, parse: bool, concurrency: int, seconds: float) -> dict[str, float]:
    """tok/s and user / system CPU per token of `concurrency` counters over `seconds`."""
    url = urlsplit(base_url)
    body = json.dumps({"model": model, "prompt": "hello " * 16, "max_tokens": OUTPUT_LEN, "min_tokens": OUTPUT_LEN,
                       "ignore_eos": True, "temperature": 0.0, "stream": True}).encode()
    request = (f"POST {url.path.rstrip('/')}/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    totals = {"tokens": 0}
    loop = asyncio.get_running_loop()
    transports = []
    for _ in range(concurrency):
        transport, _protocol = await loop.create_connection(lambda: StreamCounter(request, parse, totals),
                                                            url.hostname, url.port)
        transports.append(transport)
    await asyncio.sleep(WARMUP_S)
    before, tokens0, t0 = resource.getrusage(resource.RUSAGE_SELF), totals["tokens"], time.perf_counter()
    await asyncio.sleep(seconds)
    after, tokens1, t1 = resource.getrusage(resource.RUSAGE_SELF), totals["tokens"], time.perf_counter()
    for transport in transports:
        transport.abort()
    tokens = tokens1 - tokens0
    return {"tok_s": tokens / (t1 - t0), "user_us": (after.ru_utime - before.ru_utime) / tokens * 1e6,
            "sys_us": (after.ru_stime - before.ru_stime) / tokens * 1e6}


def child(args: argparse.Namespace) -> None:
    """One measurement in a fresh process (so the loops and modes do not share a heap)."""
    if args.loop == "uvloop":
        import uvloop  # optional

        uvloop.install()
    row = asyncio.run(measure(args.base_url, args.model, args.mode == "parse", args.concurrency, args.seconds))
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--step-ms", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--loop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401 - optional

        loops.append("uvloop")
    except ImportError:
        pass
    print(f"simulator: one token per chunk every {args.step_ms:g} ms per stream, {args.concurrency} streams")
    print(f"{'loop':>8} {'mode':>6} {'out tok/s':>10} {'user us/tok':>11} {'sys us/tok':>10} {'total':>7}")
    with tempfile.TemporaryDirectory() as tmp, \
            start_sim(f"sim://fast?step_base_ms={args.step_ms}&step_per_seq_ms=0",
                      log_path=Path(tmp) / "sim.log") as sim:
        for _ in range(args.repeat):
            for loop in loops:
                for mode in ("read", "parse"):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", f"--base-url={sim.base_url}", f"--model={sim.model}",
                         f"--mode={mode}", f"--loop={loop}", f"--concurrency={args.concurrency}",
                         f"--seconds={args.seconds}"], capture_output=True, text=True, check=True).stdout
                    row = json.loads(out.strip().splitlines()[-1])
                    print(f"{loop:>8} {mode:>6} {row['tok_s']:10,.0f} {row['user_us']:11.2f} {row['sys_us']:10.2f} "
                          f"{row['user_us'] + row['sys_us']:7.2f}", flush=True)


if __name__ == "__main__":
    main()
