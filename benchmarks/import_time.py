"""Plugin import time added to `pytest --version` (target < 0.3 s).

Runs `pytest --version` with and without the plugin (`-p no:deepseek`) several times each and
prints the medians and their difference.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7


def median_seconds(extra: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "--version", *extra], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    with_plugin = median_seconds([])
    without = median_seconds(["-p", "no:deepseek"])
    print(f"pytest --version with plugin:    {with_plugin * 1000:7.1f} ms (median of {RUNS})")
    print(f"pytest --version without plugin: {without * 1000:7.1f} ms")
    added = with_plugin - without
    print(f"added by pytest-deepseek:        {added * 1000:7.1f} ms (target < 300 ms) -> "
          f"{'OK' if added < 0.3 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
