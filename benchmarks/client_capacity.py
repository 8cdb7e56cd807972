"""Client capacity: how exactly the streaming client measures at rising aggregate token rates.

Against the simulator (which logs when it wrote every chunk), for each target rate it runs a
closed-loop scenario and reports:
- throughput error: the client's steady-state output throughput vs the tokens the simulator
  emitted in the same window (by its own write times);
- TTFT p50 error: median over requests of (client's first-token time − simulator's first write);
- TPOT error: mean over requests of client TPOT − TPOT computed from the simulator's write times;
- client CPU seconds per 1M tokens.
Targets on the 2-core machine, server included: throughput error ≤ 1% and TTFT p50 error ≤ 3 ms up
to at least 56k tok/s.

Run: `python benchmarks/client_capacity.py [--seconds 8] [--rates 3000,7000,...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_deepseek.serving.client import make_http_client, send_request
from pytest_deepseek.serving.load import LoadRunner, LoadShape
from pytest_deepseek.serving.metrics import compute_run_metrics, tpot_ms
from pytest_deepseek.serving.records import RequestRecord, RequestSpec
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.truth import read_truth

STEP_MS = 5.0  # the simulator's decode step: each stream gets tokens_per_step tokens every 5 ms


def shape_for(rate: float) -> tuple[int, int]:
    """(concurrency, tokens per chunk) giving `rate` tok/s with a 5 ms step."""
    per_stream = 1000.0 / STEP_MS
    for tokens_per_step in (1, 2, 4, 8, 16):
        concurrency = round(rate / (per_stream * tokens_per_step))
        if concurrency <= 80:
            return max(1, concurrency), tokens_per_step
    return 80, 16


def tpot(times: list[int], tokens: list[int], t0: int) -> float | None:
    n = sum(tokens)
    if len(times) < 2 or n <= tokens[0]:
        return None
    return (times[-1] - times[0]) / (n - tokens[0]) / 1e6


async def measure(base_url: str, model: str, concurrency: int, seconds: float, output_len: int
                  ) -> tuple[list[RequestRecord], object, float]:
    specs = [RequestSpec(index=i, api="completions", model=model, prompt="hello " * 16, max_tokens=output_len)
             for i in range(100_000)]
    async with make_http_client(base_url, concurrency=concurrency, api_key=None, timeout_s=60) as http:
        async def send(spec: RequestSpec, t_queued: int, on_start: Callable[[RequestRecord], None]) -> RequestRecord:
            return await send_request(http, spec, request_id=f"cap-{spec.index}", t_queued=t_queued,
                                      on_start=on_start)

        runner = LoadRunner(send, LoadShape(mode="closed", concurrency=concurrency, duration_s=seconds))
        cpu0 = time.process_time()
        result = await runner.run([], specs)
        cpu = time.process_time() - cpu0
    return result.records, result.timeline, cpu


def run_rate(rate: float, seconds: float, folder: Path) -> dict[str, float]:
    concurrency, tokens_per_step = shape_for(rate)
    output_len = 64 * tokens_per_step
    truth_path = folder / f"truth-{int(rate)}.jsonl"
    url = (f"sim://fast?step_base_ms={STEP_MS}&step_per_seq_ms=0&tokens_per_step={tokens_per_step}"
           f"&max_num_seqs=1024")
    with start_sim(url, truth_path=truth_path, log_path=folder / f"sim-{int(rate)}.log") as sim:
        records, timeline, cpu = asyncio.run(measure(sim.base_url, sim.model, concurrency, seconds, output_len))
    truth = read_truth(truth_path)
    metrics = compute_run_metrics(records, timeline)  # type: ignore[arg-type]
    start, end = metrics.window_start_ns, metrics.window_end_ns
    assert start is not None and end is not None
    emitted = 0
    ttft_err: list[float] = []
    tpot_err: list[float] = []
    tokens_total = 0
    for record in records:
        t = truth.get(record.request_id)
        if t is None or not record.success:
            continue
        tokens_total += record.n_tokens
        emitted += sum(n for ts, n in zip(t.emit_ns, t.emit_tokens) if start <= ts <= end)
        if record.t_first_token is not None and t.first_emit_ns is not None:
            ttft_err.append((record.t_first_token - t.first_emit_ns) / 1e6)
        measured_tpot = tpot_ms(record)  # N from usage, as the gate computes it
        true_tpot = tpot(t.emit_ns, t.emit_tokens, record.t_send)
        if measured_tpot is not None and true_tpot is not None:
            tpot_err.append(measured_tpot - true_tpot)
    true_thr = emitted / ((end - start) / 1e9)
    measured_thr = metrics.output_throughput or 0.0
    return {
        "target": rate,
        "concurrency": concurrency,
        "tokens_per_chunk": tokens_per_step,
        "true_tok_s": true_thr,
        "measured_tok_s": measured_thr,
        "thr_err_pct": 100.0 * (measured_thr - true_thr) / true_thr,
        "ttft_p50_err_ms": statistics.median(ttft_err) if ttft_err else float("nan"),
        "tpot_err_ms": statistics.fmean(tpot_err) if tpot_err else float("nan"),
        "cpu_s_per_mtok": cpu / tokens_total * 1e6 if tokens_total else float("nan"),
        "failed": float(sum(not r.success for r in records)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rates", default="3000,7000,14000,28000,56000,112000")
    args = parser.parse_args()
    print(f"{'target tok/s':>12} {'conc':>5} {'tok/chunk':>9} {'emitted tok/s':>13} {'measured':>10} "
          f"{'thr err %':>9} {'TTFT p50 err ms':>15} {'TPOT err ms':>11} {'CPU s/1M tok':>12} {'failed':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            row = run_rate(rate, args.seconds, Path(tmp))
            print(f"{row['target']:12,.0f} {row['concurrency']:5.0f} {row['tokens_per_chunk']:9.0f} "
                  f"{row['true_tok_s']:13,.0f} {row['measured_tok_s']:10,.0f} {row['thr_err_pct']:9.2f} "
                  f"{row['ttft_p50_err_ms']:15.2f} {row['tpot_err_ms']:11.3f} {row['cpu_s_per_mtok']:12.1f} "
                  f"{row['failed']:6.0f}", flush=True)


if __name__ == "__main__":
    main()
