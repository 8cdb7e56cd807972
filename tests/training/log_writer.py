"""Writes real log lines to a file (or stdout) the way a training run does, for follower tests.

Lines are written with partial-line flushes; optional truncation, rotation, a NaN loss, a hang.
Each written iteration's wall time goes to ``--stamps`` (``iteration time`` per line).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

ITER = re.compile(r"Iter\(train\) \[\s*(\d+)/")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", default="-")
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--stop", type=int, default=10**9)
    ap.add_argument("--delay", type=float, default=0.01)
    ap.add_argument("--partial", action="store_true", help="flush each line in two halves")
    ap.add_argument("--truncate-at", type=int, default=0)
    ap.add_argument("--rotate-at", type=int, default=0)
    ap.add_argument("--nan-at", type=int, default=0)
    ap.add_argument("--hang-at", type=int, default=0)
    ap.add_argument("--stamps", default="")
    ap.add_argument("--exit-code", type=int, default=0)
    a = ap.parse_args()
    lines = []
    with open(a.src, encoding="utf-8") as fh:
        for line in fh:
            m = ITER.search(line)
            if m and a.start <= int(m.group(1)) <= a.stop:
                lines.append((int(m.group(1)), line))
    out = sys.stdout.buffer if a.dst == "-" else open(a.dst, "ab")
    stamps = open(a.stamps, "a") if a.stamps else None
    for it, line in lines:
        if it == a.hang_at:
            time.sleep(3600)
        if a.dst != "-" and it == a.truncate_at:
            out.close()
            out = open(a.dst, "wb")  # truncates
        if a.dst != "-" and it == a.rotate_at:
            out.close()
            os.replace(a.dst, a.dst + ".1")
            out = open(a.dst, "ab")
        if it == a.nan_at:
            line = re.sub(r"loss: \S+", "loss: nan", line)
        data = line.encode()
        if a.partial:
            half = len(data) // 2
            out.write(data[:half])
            out.flush()
            time.sleep(a.delay / 2)
            out.write(data[half:])
        else:
            out.write(data)
        out.flush()
        if stamps:
            stamps.write(f"{it} {time.time()}\n")
            stamps.flush()
        time.sleep(a.delay)
    sys.exit(a.exit_code)


if __name__ == "__main__":
    main()
