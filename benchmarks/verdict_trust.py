"""How often is a throughput-floor verdict wrong, and how many requests does early stopping save?

Synthetic closed-loop runs (pytest_deepseek.testing.synthetic: continuous-batching steps with an
autocorrelated slowdown, 64 clients, outputs of 64-191 tokens) are generated with a true per-node
output throughput 5% below the floor, 5% above it, and exactly at it, for short runs (300 and
1,000 prompts: steady windows of about 20 s and 70 s) and a long one (10,000 prompts, about
12 minutes). Every run is judged as the gate judges a real server: buckets of 1 s, or the window
/ 40 on windows under 40 s (`judge.bucket_seconds_for`), batches of at least `checks.MIN_BATCH_S`,
and the drift allowance (`checks.DRIFT_SD`, `checks.DRIFT_TIME_S`). `--floors all` adds the
simulator's setting (no batch floor, no allowance: it trusts the window's own correlation
estimate, which a drifting engine like this one defeats on short windows) and a cautious
`min_batch_s: 30`.

- fixed run: all prompts, the full pipeline (compute_run_metrics -> bucket_series ->
  evaluate_checks) at one-sided 95%;
- early stopping: a look every K completed requests (the gate's 5% of the prompts unless
  `--every` says otherwise), each at the Bonferroni-corrected confidence 1 - 0.05 / looks; the
  run stops at the first look that decides. A look sees exactly the token events before it: its
  series is the run's events cut at the look, bucketed as the gate buckets a window of that
  length. Requests used = requests sent by the deciding look.

A wrong verdict is PASS below the floor or FAIL above it; INCONCLUSIVE is counted separately.
At the floor both PASS and FAIL are unproven claims, and each should happen in at most 5% of
runs (the calibration of the one-sided bounds); counts are printed with a one-sided 95%
Clopper-Pearson upper bound on the rate, so a rate is only shown to be within the target when
that bound is. The synthetic engine's window figures run about 0.1% below its nominal truth on
long runs (300 runs of 10,000 prompts: 0.9991 +- 0.0004), which tilts the at-floor rates
towards FAIL by a little.

    python benchmarks/verdict_trust.py [--runs 200] [--prompts 300 1000 10000] [--floors all]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pytest_deepseek import stats
from pytest_deepseek.serving.checks import MIN_BATCH_S, evaluate_checks, throughput_decision
from pytest_deepseek.serving.judge import EARLY_STOP_LOOK_EVERY, bucket_seconds, bucket_seconds_for
from pytest_deepseek.serving.metrics import RunMetrics, bucket_series, compute_run_metrics
from pytest_deepseek.testing.synthetic import generate_run

FLOOR_PER_NODE = 871.78  # tok/s/node, DeepSeek-V3 on 2 x 8 H800 (2048 in / 1024 out)
NODES, DEVICES = 2, 8
CONFIDENCE = 0.95
METRIC = "output_throughput_per_node"
# The gate's batch floors: the real-server default, and with --floors all the simulator's and a
# scenario's `min_batch_s: 30`.
REAL_SERVER = {"real server": MIN_BATCH_S}
ALL_FLOORS = {**REAL_SERVER, "simulator": 0.0, "30 s floor": 30.0}
CASES = ((0.95, "fail"), (1.05, "pass"), (1.0, None))  # (truth / floor, right verdict)
VERDICTS = ("pass", "fail", "inconclusive")


@dataclass(frozen=True)
class Measured:
    """One synthetic run as the checks see it, plus what the looks need."""

    metrics: RunMetrics
    series: dict[str, np.ndarray]  # bucketed as the gate buckets the run's window
    bucket_s: float
    token_times: np.ndarray  # ns, sorted
    token_cum: np.ndarray  # tokens arrived before token_times[i] (length + 1)
    done_times: np.ndarray  # last-token time of each request, sorted
    send_times: np.ndarray  # sorted
    ratio: float  # measured / true throughput


def measure(factor: float, seed: int, prompts: int, sigma: float) -> Measured:
    true_total = FLOOR_PER_NODE * factor * NODES
    run = generate_run(true_total, seed=seed, num_prompts=prompts, ar_sigma=sigma)
    m = compute_run_metrics(run.records, run.timeline, nodes=NODES, devices_per_node=DEVICES)
    bucket_s = bucket_seconds(m)
    times = np.concatenate([np.asarray(r.event_times, dtype=np.int64) for r in run.records])
    tokens = np.concatenate([np.asarray(r.event_tokens, dtype=float) for r in run.records])
    order = np.argsort(times, kind="stable")
    return Measured(
        metrics=m, series=bucket_series(run.records, m, bucket_s=bucket_s), bucket_s=bucket_s,
        token_times=times[order], token_cum=np.concatenate([[0.0], np.cumsum(tokens[order])]),
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
                              confidence=CONFIDENCE, bucket_s=run.bucket_s, min_batch_s=min_batch_s)
    return check.verdict


def early_verdict(run: Measured, min_batch_s: float, prompts: int, every: int) -> tuple[str, int]:
    """(verdict of the first deciding look or INCONCLUSIVE, requests sent by then)."""
    looks = prompts // every
    conf = stats.per_look_confidence(CONFIDENCE, looks)
    for j in range(1, looks + 1):
        t_look = int(run.done_times[j * every - 1])
        series, bucket_s = look_series(run, t_look)
        d = throughput_decision(series, FLOOR_PER_NODE, ">=", conf, bucket_s=bucket_s,
                                min_batch_s=min_batch_s)
        if d.verdict != "inconclusive":
            return d.verdict, int(np.searchsorted(run.send_times, t_look, side="right"))
    return "inconclusive", prompts


@dataclass
class Tally:
    fixed: Counter = field(default_factory=Counter)
    early: Counter = field(default_factory=Counter)
    used: list[int] = field(default_factory=list)


def rate(count: int, runs: int, bound: bool = False) -> str:
    """'12/200  6.0%' (with the one-sided 95% Clopper-Pearson upper bound when asked)."""
    text = f"{count:3d}/{runs} {count / runs:6.1%}"
    if bound:
        text += f" (<= {stats.clopper_pearson(count, runs, 0.95)[1]:5.1%})"
    return text


def report(prompts: int, case: tuple[float, str | None], tallies: dict[str, Tally], runs: int,
           ratio: list[float], window: list[float]) -> None:
    factor, right = case
    at_floor = right is None
    print(f"\n  truth = floor x {factor}"
          + (f" (right verdict: {right.upper()})" if right else
             " (at the floor: PASS and FAIL should each be <= 5%; 95% upper bounds in brackets)"))
    print(f"    window {np.mean(window):.0f} s on average; measured / true throughput: "
          f"mean {np.mean(ratio):.4f}, sd {np.std(ratio):.4f}")
    for label, t in tallies.items():
        for name, c in (("fixed run", t.fixed), ("early stop", t.early)):
            cells = "  ".join(f"{v.upper()} {rate(c[v], runs, at_floor and v != 'inconclusive')}"
                              for v in VERDICTS)
            wrong = "" if right is None else (
                f"   wrong {c['pass' if right == 'fail' else 'fail'] / runs:5.1%}")
            print(f"    {label:11s} {name:10s}: {cells}{wrong}")
        print(f"    {label:11s} early stop used {np.mean(t.used):.0f} requests on average "
              f"(median {np.median(t.used):.0f}; fixed run: {prompts})")


def run_prompts(prompts: int, every: int, floors: dict[str, float], args: argparse.Namespace,
                seed: int, summary: list[str]) -> None:
    looks = prompts // every
    print(f"\n{prompts} prompts per run: early stopping looks every {every} completed requests "
          f"({looks} looks, each at {stats.per_look_confidence(CONFIDENCE, looks):.4f})")
    near_used: dict[str, list[int]] = {label: [] for label in floors}
    wrong: dict[str, list[float]] = {label: [] for label in floors}
    for index, case in enumerate(CASES):
        tallies = {label: Tally() for label in floors}
        ratio: list[float] = []
        window: list[float] = []
        for i in range(args.runs):
            run = measure(case[0], seed + 100_000 * index + i, prompts, args.sigma)
            ratio.append(run.ratio)
            window.append(run.metrics.window_s or 0.0)
            for label, floor_s in floors.items():
                t = tallies[label]
                t.fixed[fixed_verdict(run, floor_s)] += 1
                verdict, used = early_verdict(run, floor_s, prompts, every)
                t.early[verdict] += 1
                t.used.append(used)
        report(prompts, case, tallies, args.runs, ratio, window)
        for label, t in tallies.items():
            if case[1] is not None:
                bad = "pass" if case[1] == "fail" else "fail"
                near_used[label] += t.used
                wrong[label] += [t.fixed[bad] / args.runs, t.early[bad] / args.runs]
            else:
                summary.append(
                    f"{prompts:6d} {label:11s} at floor  fixed PASS {rate(t.fixed['pass'], args.runs, True)}"
                    f"  FAIL {rate(t.fixed['fail'], args.runs, True)};  early PASS "
                    f"{rate(t.early['pass'], args.runs, True)}  FAIL {rate(t.early['fail'], args.runs, True)}")
    for label in floors:
        used = np.mean(near_used[label])
        summary.append(f"{prompts:6d} {label:11s} at +-5%   wrong at most {max(wrong[label]):5.1%}; "
                       f"early stop uses {used:.0f} requests on average ({prompts / used:.1f}x fewer)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per case")
    ap.add_argument("--prompts", type=int, nargs="+", default=[300, 1_000, 10_000])
    ap.add_argument("--every", type=int, default=None,
                    help="completed requests between looks (default: the gate's 5%% of the prompts)")
    ap.add_argument("--floors", choices=("real", "all"), default="real",
                    help="real: the real-server default only; all: also the simulator's and 30 s")
    ap.add_argument("--seed", type=int, default=20_000)
    ap.add_argument("--sigma", type=float, default=0.05,
                    help="sd of the slow (AR(1)) log-slowdown of engine steps")
    args = ap.parse_args()

    started = time.perf_counter()
    floors = REAL_SERVER if args.floors == "real" else ALL_FLOORS
    print(f"floor {FLOOR_PER_NODE} tok/s/node, {NODES} nodes, one-sided {CONFIDENCE:.0%}, "
          f"{args.runs} runs per case; batch floors: "
          + ", ".join(f"{k} {v:g} s" for k, v in floors.items()))
    summary: list[str] = []
    for position, prompts in enumerate(args.prompts):
        every = args.every or max(1, int(round(prompts * EARLY_STOP_LOOK_EVERY)))
        run_prompts(prompts, every, floors, args, args.seed + 1_000_000 * position, summary)
    print("\nsummary")
    for line in summary:
        print("  " + line)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
