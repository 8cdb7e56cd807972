"""Soak: the serving client at steady load against the simulator; RSS, CPU and drift over time.

The client runs in this process exactly as the serving gate runs it (prompt plan, connection pool,
streaming client, closed-loop load runner, records appended to records.jsonl); the simulator runs
in another process. Every interval a row shows the client's RSS (and the records the load runner
holds for judging, estimated), its CPU, the simulator's RSS and CPU, the interval's requests, output
tok/s, TTFT p50/p99 and TPOT p50, and the client's longest garbage collection and full collections
(a collection stops every stream's reads). Then the summary against the targets:

- RSS growth under 50 MB per hour (from the end of the warm-up, extrapolated linearly), in total
  and beyond the records held in memory (the load runner keeps every record until the run ends, as
  the gate needs them all to judge: the newest in memory up to `serving.held.MEMORY_BUDGET_BYTES`,
  older ones in a spill file);
- output tok/s, TTFT p50/p99 and TPOT p50 of the last window within 1% of the first window after
  the warm-up (10 minutes each, or a third of what follows the warm-up in a shorter run);
- no failed request.

Beside the drift: each window's TTFT p99 interval from its samples alone (how far two p99s may
differ by sampling), and the CPU per output token of the client and of the simulator (whose work
per token is fixed, so a change in its figure is the machine's, not the client's).

Exit status 1 when a target is missed. The figures include whatever else the machine is doing
(the simulator shares its cores); the load average is printed at the start and at the end.

    python benchmarks/soak.py                   # 10 minutes at ~5,000 output tok/s
    python benchmarks/soak.py --duration 3600   # the release check
    python benchmarks/soak.py --drop-records    # RSS without the held records (a leak shows directly)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from pytest_deepseek.testing.soak import (
    DEFAULT_CONCURRENCY,
    DEFAULT_SIM_URL,
    DRIFT_FIGURES,
    DRIFT_TARGET_PCT,
    RSS_TARGET_MB_PER_HOUR,
    Interval,
    SoakConfig,
    SoakRun,
    SoakSummary,
    count_lines,
    records_file_mb,
    run_soak,
    summarize,
)

HEADER = (f"{'t s':>6} {'RSS MB':>8} {'held MB':>8} {'CPU':>5} {'sim MB':>7} {'sim CPU':>7} {'done':>6} {'failed':>6} "
          f"{'out tok/s':>9} {'TTFT p50':>8} {'TTFT p99':>8} {'TPOT p50':>8} {'GC max ms':>9} {'full GC':>7}")
FIGURE_LABELS = {"output_tok_s": "output tok/s", "ttft_p50_ms": "TTFT p50 ms", "ttft_p99_ms": "TTFT p99 ms",
                 "tpot_p50_ms": "TPOT p50 ms"}


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width},.{digits}f}"


def row(interval: Interval) -> str:
    """One line of the table."""
    return (f"{interval.end_s:6.0f} {interval.rss_mb:8.1f} {interval.held_mb:8.1f} {interval.cpu_cores:5.2f} "
            f"{_num(interval.server_rss_mb, 7, 1)} {_num(interval.server_cpu_cores, 7, 2)} {interval.completed:6d} "
            f"{interval.failed:6d} {_num(interval.output_tok_s, 9, 0)} {_num(interval.ttft_p50_ms, 8, 2)} "
            f"{_num(interval.ttft_p99_ms, 8, 2)} {_num(interval.tpot_p50_ms, 8, 3)} {interval.gc_max_ms:9.1f} "
            f"{interval.gc_full:7d}")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary_lines(summary: SoakSummary, run: SoakRun, config: SoakConfig) -> list[str]:
    """The summary under the table: RSS growth, drift, failures, client health, the records file."""
    growth, held, beyond = summary.rss_growth_mb, summary.held_growth_mb, summary.unexplained_growth_mb
    held_per_request = held * 1024 / summary.held_growth_records if summary.held_growth_records else 0.0
    lines = [
        f"RSS {summary.rss_base_mb:.1f} MB at {summary.rss_base_s:.0f} s -> {summary.rss_last_mb:.1f} MB at "
        f"{summary.rss_last_s:.0f} s: {growth:+.1f} MB = {summary.per_hour(growth):+.0f} MB/h "
        f"(target < {RSS_TARGET_MB_PER_HOUR:g} MB/h) {_verdict(summary.rss_ok)}",
        f"  records held by the load runner: {held:+.1f} MB (~{held_per_request:.1f} KB per request)",
        f"  beyond the held records: {beyond:+.1f} MB = {summary.per_hour(beyond):+.0f} MB/h "
        f"(target < {RSS_TARGET_MB_PER_HOUR:g} MB/h) {_verdict(summary.no_leak)}",
        f"figures, last {summary.last.seconds:.0f} s vs first {summary.first.seconds:.0f} s "
        f"(target within {DRIFT_TARGET_PCT:g}%):",
    ]
    for name in DRIFT_FIGURES:
        drift = summary.drift_pct[name]
        lines.append(f"  {FIGURE_LABELS[name]:<13} {_num(summary.first.value(name), 10, 3)} -> "
                     f"{_num(summary.last.value(name), 10, 3)}  "
                     f"{'-' if drift is None else f'{drift:+.2f}%':>8}  {_verdict(summary.drift_ok(name))}")
    first, last = summary.first, summary.last
    if first.ttft_p99_interval_ms and last.ttft_p99_interval_ms:
        (a, b), (c, d) = first.ttft_p99_interval_ms, last.ttft_p99_interval_ms
        lines.append(f"  TTFT p99 of each window at 95% from its samples alone: {a:.3f}-{b:.3f} -> {c:.3f}-{d:.3f} ms "
                     f"(as if requests were independent)")
    lines.append(f"  CPU per output token, client {_num(first.client_us_per_token, 0, 1)} -> "
                 f"{_num(last.client_us_per_token, 0, 1)} us, simulator {_num(first.server_us_per_token, 0, 1)} -> "
                 f"{_num(last.server_us_per_token, 0, 1)} us (the simulator's work per token is fixed: "
                 f"a change in its figure is the machine's)")
    health = run.health
    lines += [
        f"requests: {summary.completed:,} completed, {summary.failed} failed in the sampled intervals; "
        f"{run.finished:,} finished in all (warmup and drain included) {_verdict(summary.failed == 0)}",
        f"client over the run: CPU {_num(health.cpu_fraction, 0, 2)} cores, event-loop lag p99 "
        f"{_num(health.loop_lag_p99_ms, 0, 1)} ms (max {_num(health.loop_lag_max_ms, 0, 1)}), stalled "
        f"{_num((health.stalled_fraction or 0) * 100, 0, 2)}%, concurrency {_num(health.achieved_concurrency, 0, 1)}"
        f"/{config.concurrency}",
    ]
    if run.records_path.exists():
        lines.append(f"records.jsonl: {count_lines(run.records_path):,} lines for {run.finished:,} finished requests, "
                     f"{records_file_mb(run.records_path):,.1f} MB")
    lines += [f"warning: {warning}" for warning in run.warnings]
    if run.ran_out:
        lines.append("the planned requests ran out before the duration: the load was not held to the end")
    lines.append(f"overall: {_verdict(summary.passed and not run.ran_out)}")
    return lines


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of steady load (3600: release check)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--input-len", type=int, default=256)
    parser.add_argument("--output-len", type=int, default=128, help="mean output length")
    parser.add_argument("--output-spread", type=float, default=0.5,
                        help="output lengths are uniform over output-len x (1 +- this)")
    parser.add_argument("--sim-url", default=DEFAULT_SIM_URL)
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before RSS growth is counted (default: 60, or a quarter of a shorter run)")
    parser.add_argument("--drop-records", action="store_true",
                        help="release the load runner's records after each sample")
    parser.add_argument("--keep", type=Path, default=None, help="keep records.jsonl and sim.log in this folder")
    args = parser.parse_args()
    config = SoakConfig(duration_s=args.duration, interval_s=args.interval, concurrency=args.concurrency,
                        input_len=args.input_len, output_len=args.output_len, output_spread=args.output_spread,
                        sim_url=args.sim_url, drop_records=args.drop_records,
                        warmup_s=args.warmup if args.warmup is not None else min(60.0, args.duration / 4))
    print(f"soak: {config.sim_url}, {config.concurrency} streams, in {config.input_len} / out {config.output_len} "
          f"(+-{config.output_spread:.0%}) tokens, {config.duration_s:.0f} s, sample every {config.interval_s:g} s"
          f"{', records dropped after each sample' if config.drop_records else ''}; load average {_load()}")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="deepseek-soak-") as tmp:
        folder = args.keep or Path(tmp)
        run = run_soak(config, folder, lambda interval: print(row(interval), flush=True))
        summary = summarize(run.intervals, config)
        print(f"load average at the end {_load()}")
        for line in summary_lines(summary, run, config):
            print(line)
    return 0 if summary.passed and not run.ran_out else 1


if __name__ == "__main__":
    sys.exit(main())
