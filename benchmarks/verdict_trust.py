"""How often is a throughput-floor verdict wrong, and how many requests does early stopping save?

Synthetic closed-loop runs (pytest_deepseek.serving.synthetic: continuous-batching steps with an
autocorrelated slowdown) are generated with a true per-node output throughput 5% below and 5%
above the floor. For each run:

- fixed run: all prompts, the full pipeline (compute_run_metrics -> bucket_series ->
  evaluate_checks) at one-sided 95%;
- early stopping: a look every K completed requests, each at the Bonferroni-corrected confidence
  1 - 0.05 / looks (looks = prompts / K planned); the run stops at the first look that decides.
  At a look the client has seen exactly the token events before that moment, so the look's
  per-second series is the prefix of the full run's series up to the look (the unit tests check
  this equivalence on truncated records). Requests used = requests sent by the deciding look.

A wrong verdict is PASS below the floor or FAIL above it; INCONCLUSIVE is counted separately.
A third case puts the truth exactly at the floor: there both PASS and FAIL are unproven claims,
and each should happen in at most 5% of runs (the calibration of the one-sided bounds).

    python benchmarks/verdict_trust.py [--runs 200] [--prompts 10000] [--every 500]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from pytest_deepseek import stats
from pytest_deepseek.serving.checks import MIN_BATCH_S, evaluate_checks
from pytest_deepseek.serving.metrics import bucket_series, compute_run_metrics
from pytest_deepseek.serving.synthetic import generate_run

FLOOR_PER_NODE = 871.78  # tok/s/node, DeepSeek-V3 on 2 x 8 H800 (2048 in / 1024 out)
NODES, DEVICES = 2, 8
CONFIDENCE = 0.95
METRIC = "output_throughput_per_node"


def one_run(factor: float, seed: int, prompts: int, every: int, sigma: float
            ) -> tuple[str, str, int, float]:
    """(fixed verdict, early verdict, requests used early, measured / true throughput)."""
    true_total = FLOOR_PER_NODE * factor * NODES
    run = generate_run(true_total, seed=seed, num_prompts=prompts, ar_sigma=sigma)
    m = compute_run_metrics(run.records, run.timeline, nodes=NODES, devices_per_node=DEVICES)
    series = bucket_series(run.records, m)
    [fixed] = evaluate_checks(m, series, floors={METRIC: FLOOR_PER_NODE}, confidence=CONFIDENCE)

    per_node = series["output_throughput"] / NODES
    looks = prompts // every
    conf = stats.per_look_confidence(CONFIDENCE, looks)
    done = np.sort([r.t_last_token for r in run.records])
    sends = np.sort([r.t_send for r in run.records])
    t0 = run.timeline.t_load_reached
    early, used = "inconclusive", prompts
    for j in range(1, looks + 1):
        t_look = int(done[j * every - 1])
        n = min(per_node.size, int((t_look - t0) // 1_000_000_000))
        d = stats.series_decision(per_node[:n], FLOOR_PER_NODE, ">=", conf,
                                  min_batch=int(MIN_BATCH_S))
        if d.verdict != "inconclusive":
            early, used = d.verdict, int(np.searchsorted(sends, t_look, side="right"))
            break
    return fixed.verdict, early, used, m.output_throughput / true_total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20_000)
    ap.add_argument("--sigma", type=float, default=0.05,
                    help="sd of the slow (AR(1)) log-slowdown of engine steps")
    args = ap.parse_args()

    started = time.perf_counter()
    print(f"floor {FLOOR_PER_NODE} tok/s/node, {NODES} nodes, one-sided {CONFIDENCE:.0%}, "
          f"{args.runs} runs per case, {args.prompts} prompts per run")
    print(f"early stopping: a look every {args.every} completed requests, Bonferroni over "
          f"{args.prompts // args.every} looks (each at "
          f"{stats.per_look_confidence(CONFIDENCE, args.prompts // args.every):.4f})")
    all_used: list[int] = []
    for case, (factor, right) in enumerate(((0.95, "fail"), (1.05, "pass"), (1.0, None))):
        fixed, early = Counter(), Counter()
        used, ratio = [], []
        for i in range(args.runs):
            f, e, u, r = one_run(factor, args.seed + i + 100_000 * case, args.prompts,
                                 args.every, args.sigma)
            fixed[f] += 1
            early[e] += 1
            used.append(u)
            ratio.append(r)
        print(f"\ntrue throughput = floor x {factor}"
              + (f" (right verdict: {right.upper()})" if right else " (at the floor)"))
        print(f"  measured / true throughput: mean {np.mean(ratio):.4f}, sd {np.std(ratio):.4f}")
        for name, c in (("fixed run", fixed), ("early stop", early)):
            if right is None:
                print(f"  {name:10s}: PASS {c['pass'] / args.runs:6.1%}  FAIL "
                      f"{c['fail'] / args.runs:6.1%}  inconclusive "
                      f"{c['inconclusive'] / args.runs:6.1%}   (each of PASS, FAIL should be <= 5%)")
                continue
            wrong = "pass" if right == "fail" else "fail"
            print(f"  {name:10s}: wrong {c[wrong] / args.runs:6.1%}  right {c[right] / args.runs:6.1%}"
                  f"  inconclusive {c['inconclusive'] / args.runs:6.1%}")
        print(f"  requests used with early stopping: mean {np.mean(used):.0f}, "
              f"median {np.median(used):.0f}, max {max(used)} (fixed run: {args.prompts})")
        if right is not None:
            all_used += used
    saving = args.prompts / np.mean(all_used)
    print(f"\nat 5% from the floor: early stopping uses {np.mean(all_used):.0f} requests on average, "
          f"{saving:.1f}x fewer than a fixed {args.prompts}-prompt run "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
