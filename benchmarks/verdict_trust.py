"""How often is a throughput-floor verdict wrong, and how many requests does early stopping save?

Synthetic closed-loop runs (pytest_deepseek.testing.synthetic: continuous-batching steps with an
autocorrelated slowdown) are generated with a true per-node output throughput 5% below the floor,
5% above it, and exactly at it. Every run is judged under both batch floors the gate uses,
the real-server default (`checks.MIN_BATCH_S`) and the simulator's (0 s), and under a cautious
30 s floor a scenario may set (`min_batch_s: 30`). For each:

- fixed run: all prompts, the full pipeline (compute_run_metrics -> bucket_series ->
  evaluate_checks) at one-sided 95%;
- early stopping: a look every K completed requests, each at the Bonferroni-corrected confidence
  1 - 0.05 / looks (looks = prompts / K planned); the run stops at the first look that decides.
  A look sees exactly the token events before it, so its series is the full run's events cut at
  the look, bucketed as the gate buckets a window of that length (1 s, or window / 40 when
  shorter). Requests used = requests sent by the deciding look.

On these runs the measured autocorrelation time (about 10 s) asks for batches of a minute, longer
than the real-server floor, so that floor and the simulator's give the same verdicts; the floor
binds on short windows (tests/unit/test_checks.py decides 5-10 s windows with it).

A wrong verdict is PASS below the floor or FAIL above it; INCONCLUSIVE is counted separately.
At the floor both PASS and FAIL are unproven claims, and each should happen in at most 5% of
runs (the calibration of the one-sided bounds).

    python benchmarks/verdict_trust.py [--runs 200] [--prompts 10000] [--every 500]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from pytest_deepseek import stats
from pytest_deepseek.serving.checks import MIN_BATCH_S, evaluate_checks
from pytest_deepseek.serving.judge import bucket_seconds_for
from pytest_deepseek.serving.metrics import RunMetrics, bucket_series, compute_run_metrics
from pytest_deepseek.testing.synthetic import generate_run

FLOOR_PER_NODE = 871.78  # tok/s/node, DeepSeek-V3 on 2 x 8 H800 (2048 in / 1024 out)
NODES, DEVICES = 2, 8
CONFIDENCE = 0.95
METRIC = "output_throughput_per_node"
# The gate's batch floors (real-server default, simulator), and a scenario's `min_batch_s: 30`.
BATCH_FLOORS = {"real server": MIN_BATCH_S, "simulator": 0.0, "30 s floor": 30.0}
CASES = ((0.95, "fail"), (1.05, "pass"), (1.0, None))  # (truth / floor, right verdict)


@dataclass(frozen=True)
class Measured:
    """One synthetic run as the checks see it, plus what the looks need."""

    metrics: RunMetrics
    series: dict[str, np.ndarray]
    token_times: np.ndarray  # ns, sorted
    token_cum: np.ndarray  # tokens arrived before token_times[i] (length + 1)
    done_times: np.ndarray  # last-token time of each request, sorted
    send_times: np.ndarray  # sorted
    ratio: float  # measured / true throughput


def measure(factor: float, seed: int, prompts: int, sigma: float) -> Measured:
    true_total = FLOOR_PER_NODE * factor * NODES
    run = generate_run(true_total, seed=seed, num_prompts=prompts, ar_sigma=sigma)
    m = compute_run_metrics(run.records, run.timeline, nodes=NODES, devices_per_node=DEVICES)
    times = np.concatenate([np.asarray(r.event_times, dtype=np.int64) for r in run.records])
    tokens = np.concatenate([np.asarray(r.event_tokens, dtype=float) for r in run.records])
    order = np.argsort(times, kind="stable")
    return Measured(
        metrics=m, series=bucket_series(run.records, m), token_times=times[order],
        token_cum=np.concatenate([[0.0], np.cumsum(tokens[order])]),
        done_times=np.sort([r.t_last_token for r in run.records]),
        send_times=np.sort([r.t_send for r in run.records]),
        ratio=m.output_throughput / true_total)


def look_series(run: Measured, t_look: int) -> tuple[np.ndarray, float]:
    """Per-node output tok/s buckets of the window [window start, t_look) and the bucket width."""
    start = run.metrics.window_start_ns
    assert start is not None
    window_s = (t_look - start) / 1e9
    bucket_s = bucket_seconds_for(window_s)
    width = int(round(bucket_s * 1e9))
    edges = start + width * np.arange(max(0, (t_look - start) // width) + 1, dtype=np.int64)
    cum = run.token_cum[np.searchsorted(run.token_times, edges, side="left")]
    return np.diff(cum) / bucket_s / NODES, bucket_s


def fixed_verdict(run: Measured, min_batch_s: float) -> str:
    [check] = evaluate_checks(run.metrics, run.series, floors={METRIC: FLOOR_PER_NODE},
                              confidence=CONFIDENCE, min_batch_s=min_batch_s)
    return check.verdict


def early_verdict(run: Measured, min_batch_s: float, prompts: int, every: int) -> tuple[str, int]:
    """(verdict of the first deciding look or INCONCLUSIVE, requests sent by then)."""
    looks = prompts // every
    conf = stats.per_look_confidence(CONFIDENCE, looks)
    for j in range(1, looks + 1):
        t_look = int(run.done_times[j * every - 1])
        series, bucket_s = look_series(run, t_look)
        min_batch = max(1, int(np.ceil(min_batch_s / bucket_s - 1e-9)))
        d = stats.series_decision(series, FLOOR_PER_NODE, ">=", conf, unit_s=bucket_s,
                                  min_batch=min_batch)
        if d.verdict != "inconclusive":
            return d.verdict, int(np.searchsorted(run.send_times, t_look, side="right"))
    return "inconclusive", prompts


@dataclass
class Tally:
    fixed: Counter
    early: Counter
    used: list[int]


def rates(c: Counter, runs: int) -> str:
    return "  ".join(f"{v.upper()} {c[v] / runs:6.1%}" for v in ("pass", "fail", "inconclusive"))


def report(case: tuple[float, str | None], tallies: dict[str, Tally], runs: int, ratio: list[float],
           prompts: int) -> None:
    factor, right = case
    print(f"\ntrue throughput = floor x {factor}"
          + (f" (right verdict: {right.upper()})" if right else " (at the floor: PASS and FAIL "
                                                                   "should each be <= 5%)"))
    print(f"  measured / true throughput: mean {np.mean(ratio):.4f}, sd {np.std(ratio):.4f}")
    for label, t in tallies.items():
        for name, c in (("fixed run", t.fixed), ("early stop", t.early)):
            wrong = "" if right is None else (
                f"   wrong {c['pass' if right == 'fail' else 'fail'] / runs:6.1%}")
            print(f"  {label:11s} {name:10s}: {rates(c, runs)}{wrong}")
        print(f"  {label:11s} early stop used {np.mean(t.used):.0f} requests on average "
              f"(median {np.median(t.used):.0f}, max {max(t.used)}; fixed run: {prompts})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per case")
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20_000)
    ap.add_argument("--sigma", type=float, default=0.05,
                    help="sd of the slow (AR(1)) log-slowdown of engine steps")
    args = ap.parse_args()

    started = time.perf_counter()
    looks = args.prompts // args.every
    print(f"floor {FLOOR_PER_NODE} tok/s/node, {NODES} nodes, one-sided {CONFIDENCE:.0%}, "
          f"{args.runs} runs per case, {args.prompts} prompts per run; batch floors: "
          + ", ".join(f"{k} {v:g} s" for k, v in BATCH_FLOORS.items()))
    print(f"early stopping: a look every {args.every} completed requests, Bonferroni over {looks} "
          f"looks (each at {stats.per_look_confidence(CONFIDENCE, looks):.4f})")
    near_floor_used: dict[str, list[int]] = {label: [] for label in BATCH_FLOORS}
    for index, case in enumerate(CASES):
        tallies = {label: Tally(Counter(), Counter(), []) for label in BATCH_FLOORS}
        ratio: list[float] = []
        for i in range(args.runs):
            run = measure(case[0], args.seed + i + 100_000 * index, args.prompts, args.sigma)
            ratio.append(run.ratio)
            for label, floor_s in BATCH_FLOORS.items():
                t = tallies[label]
                t.fixed[fixed_verdict(run, floor_s)] += 1
                verdict, used = early_verdict(run, floor_s, args.prompts, args.every)
                t.early[verdict] += 1
                t.used.append(used)
        report(case, tallies, args.runs, ratio, args.prompts)
        if case[1] is not None:
            for label in BATCH_FLOORS:
                near_floor_used[label] += tallies[label].used
    print()
    for label, used in near_floor_used.items():
        print(f"{label}: at 5% from the floor early stopping uses {np.mean(used):.0f} requests on "
              f"average, {args.prompts / np.mean(used):.1f}x fewer than a fixed "
              f"{args.prompts}-prompt run")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
