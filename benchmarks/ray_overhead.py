"""What sending the load from Ray actors costs against local worker processes (`--deepseek-load-cluster`).

Starts a one-host Ray cluster on 127.0.0.1 (`testing.ray_cluster`, timed), then runs the same
closed-loop scenario against a fresh simulator, alternating local worker processes
(`load_workers.run_with_workers`) and Ray actors (`ray_link.run_on_cluster`), and prints per run:
- wall time of the whole load call (worker start-up, warm-up, measured phase, teardown), s;
- time from the call to the first measured request, s (Ray: placement group, actors, clock
  measurement and job shipping; the first Ray run also joins the cluster);
- the simulator's true output tok/s over the steady window, the client's error against it (%), and
  the TTFT p50 error against the simulator's first write (ms): the aligned clocks at work;
- each Ray actor's clock offset +/- its bound and its drift over the run, ms (one host: ~0).

    python benchmarks/ray_overhead.py [--runs 3] [--concurrency 16] [--workers 2] [--output-len 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_deepseek.serving.contract import ClientHealth
from pytest_deepseek.serving.load import LoadResult
from pytest_deepseek.serving.load_split import split_load
from pytest_deepseek.serving.load_workers import run_with_workers
from pytest_deepseek.serving.measure import LoadRun, RequestPlan, ServingTarget, load_shape
from pytest_deepseek.serving.metrics import compute_run_metrics
from pytest_deepseek.serving.records import RequestSpec
from pytest_deepseek.serving.spec import Scenario
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.truth import read_truth
from pytest_deepseek.testing.fidelity import compare
from pytest_deepseek.testing.ray_cluster import LocalRayCluster

SIM = "sim://fast?step_base_ms={step}&step_per_seq_ms=0&max_num_seqs=256"


def one_run(kind: str, cluster: LocalRayCluster, args: argparse.Namespace, tmp: Path, n: int) -> dict[str, Any]:
    """One run of the scenario through `kind` ("local" or "ray"), against its own simulator."""
    streams, prompts = args.concurrency, args.concurrency * args.prompts_per_stream
    scenario = Scenario(input_len=32, output_len=args.output_len, concurrency=streams, num_prompts=prompts,
                        warmup=streams)
    truth_path = tmp / f"truth-{kind}-{n}.jsonl"
    with start_sim(SIM.format(step=args.step_ms), truth_path=truth_path) as sim:
        specs = [RequestSpec(index=i, api="completions", model=sim.model, prompt="hello " * 32,
                             max_tokens=args.output_len, warmup=i < streams) for i in range(prompts + streams)]
        plan = RequestPlan(specs[:streams], specs[streams:], {})
        run = LoadRun(scenario, ServingTarget(base_url=sim.base_url, model=sim.model, api="completions",
                                              simulated=True), plan, request_prefix=f"{kind}{n}")
        called = time.perf_counter_ns()
        load = _drive(kind, cluster, run, args.workers)
        wall = (time.perf_counter_ns() - called) / 1e9
    return _figures(load, read_truth(truth_path), called, wall)


def _drive(kind: str, cluster: LocalRayCluster, run: LoadRun, workers: int) -> LoadResult:
    if kind == "local":
        parts = split_load(load_shape(run.scenario), run.plan.warmup, run.plan.measured, workers)
        return run_with_workers(run, parts, lambda record: None)
    from pytest_deepseek.serving.ray_link import run_on_cluster

    return run_on_cluster(cluster.address, run, workers, lambda record: None)


def _figures(load: LoadResult, truth: Any, called_ns: int, wall_s: float) -> dict[str, Any]:
    if load.cut_short:
        raise RuntimeError(load.cut_short)
    measured = [r for r in load.records if not r.warmup]
    metrics = compute_run_metrics(load.records, load.timeline)
    assert metrics.window_start_ns is not None and metrics.window_end_ns is not None
    report = compare(load.records, truth, window=(metrics.window_start_ns, metrics.window_end_ns),
                     measured_throughput=metrics.output_throughput)
    health = ClientHealth.of(load.health)
    return {"wall_s": wall_s, "first_s": (min(r.t_send for r in measured) - called_ns) / 1e9,
            "true_tok_s": report.true_throughput, "thr_err_pct": report.throughput_error_pct,
            "ttft_err_ms": report.ttft_error_ms_p50, "failed": sum(not r.success for r in load.records),
            "clocks": [(w.clock_offset_ms, w.clock_uncertainty_ms, w.clock_drift_ms)
                       for w in health.workers if w.clock_offset_ms is not None]}


def _clocks(clocks: list[tuple[float, float, float]]) -> str:
    return "; ".join(f"{o:+.3f} +/- {u:.3f} (drift {d:+.3f})" for o, u, d in clocks) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind, alternated")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prompts-per-stream", type=int, default=6)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--step-ms", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalRayCluster(num_cpus=args.workers) as cluster:
        print(f"ray start --head on 127.0.0.1 ({args.workers} CPUs): {cluster.start_s:.2f} s; "
              f"closed loop c={args.concurrency}, {args.concurrency * args.prompts_per_stream} requests x "
              f"{args.output_len} tokens, {args.workers} workers, one token every {args.step_ms:g} ms per stream")
        print(f"{'run':>8} {'wall s':>7} {'first s':>7} {'true tok/s':>10} {'thr err %':>9} {'TTFT err ms':>11} "
              f"{'failed':>6}  clock offset ms per actor")
        for n in range(args.runs):
            for kind in ("local", "ray"):
                row = one_run(kind, cluster, args, Path(tmp), n)
                print(f"{kind + str(n):>8} {row['wall_s']:7.2f} {row['first_s']:7.2f} {row['true_tok_s']:10,.0f} "
                      f"{row['thr_err_pct'] or 0:9.2f} {row['ttft_err_ms'] or 0:11.2f} {row['failed']:6d}  "
                      f"{_clocks(row['clocks'])}", flush=True)
        t0 = time.perf_counter()
    print(f"cluster stopped in {time.perf_counter() - t0:.2f} s; Ray processes left: {cluster.members()}")


if __name__ == "__main__":
    main()
