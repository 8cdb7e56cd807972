"""Fidelity: how closely the client's TTFT, TPOT and throughput match what the simulator emitted.

The simulator logs the perf_counter_ns of every chunk right before writing it; client and server
share CLOCK_MONOTONIC on this machine. For each regime it prints the client's errors against that
log beside the goal (measured on a 2-core machine, server included, nothing else running):

- low load (2 streams, 20 ms steps): throughput within 1%, TTFT p50 error 0..3 ms, mean TPOT
  error within 0.3 ms;
- high load (48 streams, 5 ms steps: up to 9,600 tokens/s as single-token chunks): throughput
  within 2%, TTFT p50 error 0..5 ms, mean TPOT error within 0.5 ms;
- open loop (40 requests/s, 10 ms steps): throughput within 2%, TTFT p50 error 0..3 ms;
- multi-token chunks (2 and 4 tokens per step): throughput within 1.5%, mean TPOT error within 0.3 ms.

Millisecond errors depend on the machine's load (a busy core delays the client's reads); the tests
in tests/fidelity check the plumbing with tolerances that hold on a busy machine, this prints the
figures. Run: `python benchmarks/fidelity.py [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_deepseek.testing.fidelity import FidelityReport, measure_against_sim


@dataclass(frozen=True)
class Regime:
    """One load regime and the goals its errors are held to (None: not a goal there)."""

    name: str
    url: str
    concurrency: int
    prompts: int
    output_len: int
    mode: str = "closed"
    rate: float | None = None
    throughput_pct: float | None = None  # |error| at most
    ttft_p50_ms: float | None = None  # error in 0..this
    tpot_mean_ms: float | None = None  # |error| at most


REGIMES = (
    Regime("low load", "sim://deepseek-v3?step_base_ms=20&step_per_seq_ms=0", 2, 12, 64,
           throughput_pct=1.0, ttft_p50_ms=3.0, tpot_mean_ms=0.3),
    Regime("high load", "sim://fast?step_base_ms=5&step_per_seq_ms=0", 48, 240, 128,
           throughput_pct=2.0, ttft_p50_ms=5.0, tpot_mean_ms=0.5),
    Regime("open loop", "sim://deepseek-v3?step_base_ms=10", 64, 80, 32, mode="open", rate=40.0,
           throughput_pct=2.0, ttft_p50_ms=3.0),
    Regime("2 tokens/chunk", "sim://deepseek-v3-mtp?step_base_ms=10&tokens_per_step=2", 4, 16, 64,
           throughput_pct=1.5, tpot_mean_ms=0.3),
    Regime("4 tokens/chunk", "sim://deepseek-v3-mtp?step_base_ms=10&tokens_per_step=4", 4, 16, 64,
           throughput_pct=1.5, tpot_mean_ms=0.3),
)


def _cell(value: float | None, goal: float | None, within: bool, digits: int) -> str:
    if value is None:
        return f"{'-':>8} {'':>13}"
    if goal is None:
        return f"{value:8.{digits}f} {'':>13}"
    return f"{value:8.{digits}f} {'ok' if within else 'MISSED':>6} {goal:>6g}"


def row(regime: Regime, report: FidelityReport) -> str:
    """One printed line: each error, whether it met its goal, and the goal."""
    thr, ttft, tpot = report.throughput_error_pct, report.ttft_error_ms_p50, report.tpot_error_ms_mean
    cells = [
        _cell(thr, regime.throughput_pct, thr is not None and abs(thr) <= (regime.throughput_pct or 0), 2),
        _cell(ttft, regime.ttft_p50_ms, ttft is not None and 0 <= ttft <= (regime.ttft_p50_ms or 0), 2),
        _cell(tpot, regime.tpot_mean_ms, tpot is not None and abs(tpot) <= (regime.tpot_mean_ms or 0), 3),
    ]
    return f"{regime.name:>15} {report.true_throughput:10,.0f}  " + "  ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per regime")
    args = parser.parse_args()
    print(f"{'regime':>15} {'true tok/s':>10}  {'thr err %':>8} {'':>6} {'goal':>6}  {'TTFT p50 err ms':>8} "
          f"{'':>6} {'goal':>6}  {'TPOT err ms':>8} {'':>6} {'goal':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for regime in REGIMES:
            for attempt in range(args.repeat):
                folder = Path(tmp) / f"{regime.name.replace(' ', '-').replace('/', '-')}-{attempt}"
                folder.mkdir()
                measured = measure_against_sim(regime.url, folder, concurrency=regime.concurrency,
                                               prompts=regime.prompts, output_len=regime.output_len,
                                               mode=regime.mode, rate=regime.rate)
                print(row(regime, measured.report), flush=True)


if __name__ == "__main__":
    main()
