"""Plugin import time added to `pytest --version` (target < 0.3 s).

Runs `pytest --version` with and without the plugin (`-p no:deepseek`) several times each and
prints the medians and their difference.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 15


def once(extra: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "--version", *extra], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    # Interleaved, so a busy moment of the machine hits both sides alike.
    with_times, without_times = [], []
    for _ in range(RUNS):
        with_times.append(once([]))
        without_times.append(once(["-p", "no:deepseek"]))
    with_plugin = statistics.median(with_times)
    without = statistics.median(without_times)
    print(f"pytest --version with plugin:    {with_plugin * 1000:7.1f} ms (median of {RUNS})")
    print(f"pytest --version without plugin: {without * 1000:7.1f} ms")
    added = with_plugin - without
    print(f"added by pytest-deepseek:        {added * 1000:7.1f} ms (target < 300 ms) -> "
          f"{'OK' if added < 0.3 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
