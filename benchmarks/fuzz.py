"""Fuzz the parsers with a large budget: the targets of tests/fuzz, many more examples each.

    python benchmarks/fuzz.py --examples 5000                  # every target
    python benchmarks/fuzz.py --examples 20000 --target sse    # targets whose name contains "sse"

Prints, per target, the examples run, the crashing examples, the distinct crashes (exception type and
the parser line that raised it, or the contract assertion that failed) and the slowest example. An
example running longer than `--hang-s` is stopped and counted as a crash (a hang). For each distinct
crash the shortest input seen is printed. Exit status 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the fuzz targets, and the training tests' log synthesiser

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from fuzz import (  # noqa: E402
    test_results_readers_fuzz,
    test_sse_fuzz,
    test_thresholds_fuzz,
    test_training_logs_fuzz,
)
from fuzz.target import Target  # noqa: E402

MODULES = (test_sse_fuzz, test_thresholds_fuzz, test_training_logs_fuzz, test_results_readers_fuzz)


class Hang(Exception):
    """An example ran longer than the hang limit."""


@dataclass
class Tally:
    """What one target's run found."""

    examples: int = 0
    crashes: int = 0
    slowest_s: float = 0.0
    slowest_input: str = ""
    shortest: dict[str, tuple[str, str]] = field(default_factory=dict)  # signature -> (shortest input, its error)


def signature(exc: BaseException) -> str:
    """`Type at file:line (function)`: the innermost frame in the package (or in the check, for a
    contract assertion), so one bug counts once however many inputs reach it."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "/pytest_deepseek/" in f.filename]
    checks = [f for f in frames if "/tests/fuzz/" in f.filename]
    frame = (checks or frames)[-1] if isinstance(exc, AssertionError) else (own or frames)[-1]
    where = Path(frame.filename)
    shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    return f"{type(exc).__name__} at {shown}:{frame.lineno} ({frame.name})"


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `Hang` in the main thread when the block runs longer than `seconds`."""
    def expire(_signum: int, _frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(target: Target, examples: int, hang_s: float, random_seed: int) -> Tally:
    """Run `target` on `examples` generated inputs, counting crashes instead of stopping at the first."""
    tally = Tally()

    def probe(example: Any) -> None:
        tally.examples += 1
        start = time.perf_counter()
        try:
            with time_limit(hang_s):
                target.check(example)
        except Exception as exc:  # noqa: BLE001 - every escape is a finding
            tally.crashes += 1
            shown = repr(example)
            key = signature(exc)
            if key not in tally.shortest or len(shown) < len(tally.shortest[key][0]):
                tally.shortest[key] = (shown, str(exc).split("\n")[0])
        elapsed = time.perf_counter() - start
        if elapsed > tally.slowest_s:
            tally.slowest_s, tally.slowest_input = elapsed, repr(example)

    budget = settings(
        max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    seed(random_seed)(budget(given(target.strategy)(probe)))()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=5000, help="examples per target (default 5000)")
    parser.add_argument("--target", default="", help="run only targets whose name contains this")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0: reproducible)")
    parser.add_argument("--hang-s", type=float, default=10.0, help="an example running longer is a hang")
    args = parser.parse_args()
    targets = [t for module in MODULES for t in module.TARGETS if args.target in t.name]
    print(f"{'target':34} {'examples':>9} {'crashes':>8} {'distinct':>9} {'slowest ms':>11} {'wall s':>8}")
    found: dict[str, dict[str, tuple[str, str]]] = {}
    slow: dict[str, tuple[float, str]] = {}
    for target in targets:
        start = time.perf_counter()
        tally = fuzz(target, args.examples, args.hang_s, args.seed)
        wall = time.perf_counter() - start
        print(f"{target.name:34} {tally.examples:9,d} {tally.crashes:8,d} {len(tally.shortest):9d} "
              f"{tally.slowest_s * 1000:11.1f} {wall:8.1f}", flush=True)
        if tally.shortest:
            found[target.name] = tally.shortest
        if tally.slowest_s > args.hang_s / 10:
            slow[target.name] = (tally.slowest_s, tally.slowest_input)
    for name, crashes in found.items():
        print(f"\n{name}:")
        for key, (shown, error) in crashes.items():
            print(f"  {key}: {_clip(error, 200)}\n    shortest input: {_clip(shown, 400)}")
    for name, (seconds, shown) in slow.items():
        print(f"\n{name}: slowest example {seconds:.2f} s: {_clip(shown, 400)}")
    return 1 if found else 0


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


if __name__ == "__main__":
    sys.exit(main())
