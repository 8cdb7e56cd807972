"""Throughput of the SSE parser and OpenAI chunk interpreter on a synthetic vLLM chat stream.

    python benchmarks/sse_parse.py            # parser and parser + interpreter, in events/s
    python benchmarks/sse_parse.py --client   # also the whole client against a loopback server

The client figure runs `send_request` (httpx streaming, parsing, time stamps) on `--streams`
concurrent streams served by a raw asyncio server in a separate process on 127.0.0.1 that writes
every event as its own chunk, as serving engines do, so the client's reads are small.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_deepseek.serving.sse import SSEParser, StreamInterpreter


def vllm_event(i: int, content: str, finish: str | None = None) -> bytes:
    """One chat chunk as vLLM serialises it."""
    chunk = {
        "id": "chatcmpl-b5f1d9f2a3c84d7e9f0a1b2c3d4e5f60",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "deepseek-ai/DeepSeek-R1",
        "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def synthetic_stream(n_tokens: int) -> list[bytes]:
    """Role chunk, `n_tokens` content chunks, usage-only chunk, [DONE]: one element per event."""
    words = ["the", " quick", " brown", " fox", " 你好", " jumps", " über", " lazy", " dog", "."]
    events = [vllm_event(0, "")]
    events += [vllm_event(i, words[i % len(words)]) for i in range(n_tokens - 1)]
    events.append(vllm_event(n_tokens, "!", "length"))
    usage = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
             "usage": {"prompt_tokens": 1024, "completion_tokens": n_tokens, "total_tokens": 1024 + n_tokens}}
    events.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def reads_of(events: list[bytes], size: int) -> list[bytes]:
    """The stream cut into reads of `size` bytes (0: one event per read)."""
    if size == 0:
        return events
    body = b"".join(events)
    return [body[i : i + size] for i in range(0, len(body), size)]


def bench_parse(reads: list[bytes], n_events: int, interpret: bool, repeat: int) -> float:
    """Best events per second of CPU time over `repeat` passes (CPU time: other load on the
    machine does not distort it)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        parser = SSEParser()
        interp = StreamInterpreter()
        count = 0
        for data in reads:
            for event in parser.feed(data):
                if interpret:
                    interp.feed_event(event)
                count += 1
        count += len(parser.finish())
        best = min(best, time.process_time() - start)
        assert count == n_events, (count, n_events)
        if interpret:
            assert interp.done and interp.error_kind is None
    return n_events / best


# --- whole client against a loopback server in another process --------------------------------


def _serve(port_queue: multiprocessing.Queue[int], n_tokens: int) -> None:
    events = synthetic_stream(n_tokens)
    chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in request.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(head)
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0)  # let other streams interleave: one event per write
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    asyncio.run(main())


async def _run_client(
    base_url: str, streams: int, requests: int, transport: str
) -> tuple[int, int, float, float]:
    from pytest_deepseek.serving.client import make_http_client, send_request
    from pytest_deepseek.serving.records import RequestSpec

    spec = RequestSpec(index=0, api="chat", model="m", messages=({"role": "user", "content": "hi"},))
    async with make_http_client(
        base_url, concurrency=streams, api_key=None, timeout_s=30, transport=transport  # type: ignore[arg-type]
    ) as http:
        await send_request(http, spec, request_id="warm", t_queued=0)
        queue = list(range(requests))
        events = 0
        failures = 0

        async def worker() -> None:
            nonlocal events, failures
            while queue:
                i = queue.pop()
                record = await send_request(http, spec, request_id=f"r{i}", t_queued=time.perf_counter_ns())
                events += len(record.event_times)
                failures += not record.success

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(streams)))
        return events, failures, time.perf_counter() - wall0, time.process_time() - cpu0


def bench_client(streams: int, requests: int, n_tokens: int, transport: str) -> None:
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(queue, n_tokens), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=10)
        base_url = f"http://127.0.0.1:{port}/v1"
        events, failures, wall, cpu = asyncio.run(_run_client(base_url, streams, requests, transport))
    finally:
        server.terminate()
        server.join(5)
    print(f"client ({transport}), {streams} streams x {n_tokens} tokens, {requests} requests: "
          f"{events / wall:,.0f} events/s wall, {events / cpu:,.0f} events per client CPU second "
          f"({failures} failed, client CPU {100 * cpu / wall:.0f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="content chunks in the parser stream")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--client", action="store_true", help="also benchmark the whole client")
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--client-tokens", type=int, default=256)
    parser.add_argument("--transport", action="append", choices=["httpx", "aiohttp", "auto"],
                        help="client transport (repeatable; default: httpx, and aiohttp when installed)")
    args = parser.parse_args()

    events = synthetic_stream(args.tokens)
    n_events = len(events)
    print(f"synthetic vLLM stream: {n_events} events, {sum(map(len, events)) / n_events:.0f} bytes/event "
          f"(python {sys.version.split()[0]}, pid {os.getpid()})")
    for size, label in ((0, "one event per read"), (16_384, "16 KiB reads"), (7, "7-byte reads")):
        reads = reads_of(events, size)
        parse_only = bench_parse(reads, n_events, interpret=False, repeat=args.repeat)
        full = bench_parse(reads, n_events, interpret=True, repeat=args.repeat)
        print(f"{label:>20}: parser {parse_only:>12,.0f} events/s   parser + interpreter {full:>12,.0f} events/s"
              "  (per CPU second)")
    if args.client:
        transports = args.transport or ["httpx"] + (["aiohttp"] if importlib.util.find_spec("httpx_aiohttp") else [])
        for transport in transports:
            bench_client(args.streams, args.requests, args.client_tokens, transport)


if __name__ == "__main__":
    main()
