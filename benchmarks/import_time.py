"""Start-up time the plugin adds to a pytest run (target < 0.3 s).

Runs `pytest --collect-only` in an empty folder (plugins are loaded and configured, nothing is
collected) with and without the plugin (`-p no:deepseek`), interleaved, and prints the medians
and their difference. (`pytest --version` no longer loads plugins, so it cannot show their cost.)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 15


def once(extra: list[str], folder: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
                          capture_output=True, cwd=folder)
    if done.returncode != 5:  # 5: no tests collected, as expected in an empty folder
        raise RuntimeError(f"pytest exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return time.perf_counter() - t0


def main() -> None:
    # Interleaved, so a busy moment of the machine hits both sides alike.
    with_times, without_times = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(RUNS):
            with_times.append(once([], folder))
            without_times.append(once(["-p", "no:deepseek"], folder))
    with_plugin = statistics.median(with_times)
    without = statistics.median(without_times)
    print(f"pytest start-up with plugin:    {with_plugin * 1000:7.1f} ms (median of {RUNS})")
    print(f"pytest start-up without plugin: {without * 1000:7.1f} ms")
    added = with_plugin - without
    print(f"added by pytest-deepseek:        {added * 1000:7.1f} ms (target < 300 ms) -> "
          f"{'OK' if added < 0.3 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
