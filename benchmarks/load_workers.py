"""Faithful token rate against the number of load worker processes (`--deepseek-load-workers`).

The simulator runs alone in its own process (one token per chunk every `--step-ms` per stream,
its ground truth logged), pinned with `taskset` to the last CPU; the load (coordinator and worker
processes, which inherit the affinity) is pinned to the others. For each stream count and worker
count it runs a closed-loop scenario through the gate's own load path (`measure.drive` for one
process, `load_workers.run_with_workers` for several) and prints:
- the simulator's true output tok/s over the run's steady window and the client's error against it,
- TTFT p50 error (client first token - simulator's first write), ms,
- the busiest load process's CPU fraction (cores) and the event-loop lag p99 of the worst process,
- the wall time of the whole run (process start-up included).
Goals (issue text): throughput within 1% of the truth and TTFT p50 within 3 ms.

    python benchmarks/load_workers.py [--streams 16,32,64] [--workers 1,2] [--prompts-per-stream 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_deepseek.run_async import run_async
from pytest_deepseek.serving.contract import ClientHealth
from pytest_deepseek.serving.load_split import split_load
from pytest_deepseek.serving.load_workers import run_with_workers
from pytest_deepseek.serving.measure import LoadRun, RequestPlan, ServingTarget, drive, load_shape
from pytest_deepseek.serving.metrics import compute_run_metrics
from pytest_deepseek.serving.records import RequestRecord, RequestSpec
from pytest_deepseek.serving.spec import Scenario
from pytest_deepseek.sim.server import READY_PREFIX
from pytest_deepseek.sim.truth import TruthRecord, read_truth
from pytest_deepseek.testing.fidelity import compare

MODEL = "deepseek-ai/DeepSeek-V3"


def start_sim(step_ms: float, truth: Path, cpu: int | None) -> tuple[subprocess.Popen[bytes], str]:
    """The simulator in its own process (pinned to `cpu` when given) and its base URL."""
    command = [sys.executable, "-m", "pytest_deepseek.sim", "--preset", "fast", "--port", "0", "--truth", str(truth),
               "--set", f"step_base_ms={step_ms}", "--set", "step_per_seq_ms=0", "--set", "max_num_seqs=512",
               "--exit-with-parent"]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith(READY_PREFIX):
        process.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return process, line[len(READY_PREFIX):].strip()


def complete_truth(path: Path, request_ids: set[str], wait_s: float = 10.0) -> dict[str, TruthRecord]:
    """The simulator's truth once it holds every request of the run (it writes a line after the
    request's last chunk, a moment after the client saw it)."""
    deadline = time.monotonic() + wait_s
    while True:
        truth = read_truth(path)
        if request_ids <= truth.keys() or time.monotonic() > deadline:
            return truth
        time.sleep(0.1)


def one_run(base_url: str, truth_path: Path, streams: int, prompts: int, output_len: int, workers: int
            ) -> dict[str, float]:
    scenario = Scenario(input_len=32, output_len=output_len, concurrency=streams, num_prompts=prompts, warmup=streams)
    specs = [RequestSpec(index=i, api="completions", model=MODEL, prompt="hello " * 32, max_tokens=output_len,
                         warmup=i < streams) for i in range(prompts + streams)]
    plan = RequestPlan(specs[:streams], specs[streams:], {})
    run = LoadRun(scenario, ServingTarget(base_url=base_url, model=MODEL, api="completions", simulated=True), plan,
                  request_prefix=f"lw{workers}-{streams}-{time.monotonic_ns()}")
    sink: list[RequestRecord] = []
    started = time.perf_counter()
    if workers == 1:
        load = run_async(drive(run, sink.append))
    else:
        load = run_with_workers(run, split_load(load_shape(scenario), plan.warmup, plan.measured, workers), sink.append)
    wall = time.perf_counter() - started
    truth = complete_truth(truth_path, {r.request_id for r in load.records})
    metrics = compute_run_metrics(load.records, load.timeline)
    assert metrics.window_start_ns is not None and metrics.window_end_ns is not None
    report = compare(load.records, truth, window=(metrics.window_start_ns, metrics.window_end_ns),
                     measured_throughput=metrics.output_throughput)
    health = ClientHealth.of(load.health)
    return {"true_tok_s": report.true_throughput, "thr_err_pct": _number(report.throughput_error_pct),
            "ttft_err_ms": _number(report.ttft_error_ms_p50), "cpu": _number(health.cpu_fraction),
            "lag_p99": _number(health.loop_lag_p99_ms), "wall_s": wall,
            "failed": float(sum(not r.success for r in load.records))}


def _number(value: float | None) -> float:
    return float("nan") if value is None else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="16,32,64")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--step-ms", type=float, default=5.0)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--prompts-per-stream", type=int, default=6)
    parser.add_argument("--no-pin", action="store_true", help="let server and load share every CPU")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = None if args.no_pin or len(cpus) < 2 else cpus[-1]
    if server_cpu is not None:
        os.sched_setaffinity(0, set(cpus[:-1]))  # the load's processes inherit this
    print(f"CPUs {cpus}; simulator on {server_cpu if server_cpu is not None else 'any'}, load on "
          f"{sorted(os.sched_getaffinity(0))}; one token per chunk every {args.step_ms:g} ms per stream")
    print(f"{'streams':>7} {'workers':>7} {'true tok/s':>10} {'thr err %':>9} {'TTFT p50 err ms':>15} "
          f"{'max CPU/proc':>12} {'lag p99 ms':>10} {'wall s':>7} {'failed':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        truth = Path(tmp) / "truth.jsonl"
        sim, base_url = start_sim(args.step_ms, truth, server_cpu)
        try:
            for streams in (int(s) for s in args.streams.split(",")):
                for workers in (int(w) for w in args.workers.split(",")):
                    row = one_run(base_url, truth, streams, streams * args.prompts_per_stream, args.output_len, workers)
                    print(f"{streams:7d} {workers:7d} {row['true_tok_s']:10,.0f} {row['thr_err_pct']:9.2f} "
                          f"{row['ttft_err_ms']:15.2f} {row['cpu']:12.2f} {row['lag_p99']:10.1f} {row['wall_s']:7.1f} "
                          f"{row['failed']:6.0f}", flush=True)
        finally:
            sim.terminate()
            sim.wait(timeout=10)


if __name__ == "__main__":
    main()
