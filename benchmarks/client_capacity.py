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

`--gate` measures the gate as users run it instead: the simulator alone in its own process
(`python -m pytest_deepseek.sim`, one token per chunk every `--step-ms`), and a whole
`pytest suites/test_serving.py --endpoint=...` run against it with a one-scenario thresholds file
(closed loop). It prints, per repeat, the run's own client-health `cpu_fraction`, its output
throughput and the in-run client CPU per streamed token (cpu_fraction / output tok/s), plus the
CPU of the whole pytest process (imports and reports included) per token.
`--tty` runs pytest under `script` so that progress is the live terminal display.
Run: `python benchmarks/client_capacity.py --gate [--repeat 3] [--step-ms 5] [--concurrency 64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
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
REPO = Path(__file__).resolve().parents[1]
GATE_THRESHOLDS = """version: 1
profiles:
  capacity:
    endpoint: {base_url}
    model: {model}
    api: completions
    serving:
      defaults:
        dataset: random
        warmup: 4
      scenarios:
        - input_len: 32
          output_len: {output_len}
          concurrency: {concurrency}
          num_prompts: {prompts}
          floors: {{output_throughput_per_node: 1}}
"""


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


def run_gate_once(base_url: str, model: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """One whole `pytest suites/test_serving.py` run; its client-health figures per token."""
    thresholds = folder / "thresholds.yaml"
    thresholds.write_text(GATE_THRESHOLDS.format(base_url=base_url, model=model,
                                                 output_len=args.output_len, concurrency=args.concurrency,
                                                 prompts=args.prompts))
    results = folder / "results"
    command = [sys.executable, "-m", "pytest", "suites/test_serving.py", f"--endpoint={base_url}",
               f"--deepseek-thresholds={thresholds}", "--deepseek-profile=capacity",
               f"--deepseek-results-dir={results}", "-p", "no:cacheprovider", "-q"]
    if args.tty and shutil.which("script"):
        command = ["script", "-qec", shlex.join(command), os.devnull]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(next(results.glob("*/summary.json")).read_text())
    test = summary["tests"][0]
    fraction = float(test["client"]["cpu_fraction"])
    tok_s = float(test["metrics"]["output_throughput_run_window"])
    window_s = float(test["metrics"]["run_window_s"])
    return {"cpu_fraction": fraction, "tok_s": tok_s, "us_per_token": fraction / tok_s * 1e6,
            "process_us_per_token": process_cpu / (tok_s * window_s) * 1e6, "verdict": test.get("verdict", "?")}


def gate_main(args: argparse.Namespace) -> None:
    """`--gate`: the in-run client CPU per streamed token of whole gate runs, `--repeat` times."""
    print(f"simulator: one token per chunk every {args.step_ms:g} ms per stream, {args.concurrency} streams, "
          f"{args.prompts} x {args.output_len} tokens")
    print(f"{'run':>3} {'out tok/s':>10} {'cpu_fraction':>12} {'in-run CPU us/tok':>17} "
          f"{'process CPU us/tok':>18} verdict")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # the simulator alone in its own process, as a user would start it
        with start_sim(f"sim://fast?step_base_ms={args.step_ms}&step_per_seq_ms=0", log_path=Path(tmp) / "sim.log") as sim:
            for i in range(args.repeat):
                folder = Path(tmp) / f"run{i}"
                folder.mkdir()
                row = run_gate_once(sim.base_url, sim.model, folder, args)
                rows.append(row)
                print(f"{i + 1:3d} {row['tok_s']:10,.0f} {row['cpu_fraction']:12.3f} {row['us_per_token']:17.1f} "
                      f"{row['process_us_per_token']:18.1f} {row['verdict']}", flush=True)
    per_token = [row["us_per_token"] for row in rows]
    print(f"in-run client CPU per streamed token: {min(per_token):.1f}-{max(per_token):.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rates", default="3000,7000,14000,28000,56000,112000")
    parser.add_argument("--gate", action="store_true", help="measure whole gate runs against a separate simulator")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step-ms", type=float, default=STEP_MS)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=512)
    parser.add_argument("--prompts", type=int, default=448)
    parser.add_argument("--tty", action="store_true", help="run pytest under `script` (live progress display)")
    args = parser.parse_args()
    if args.gate:
        gate_main(args)
        return
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
