"""Training-log parsing speed per dialect, and verdict latency when following a live log.

    python benchmarks/log_parsing.py                    # lines/s per dialect, 96,000 iterations
    python benchmarks/log_parsing.py --iterations 20000 --repeat 1

Corpora are XTuner-sized (96,000 iterations, one record per iteration) and built by replaying
real lines: the committed mmengine run (text and vis_data JSON), the real MindFormers, HF Trainer
and DeepSpeed captures, renumbered; Megatron, torchtitan and JSONL come from the test generators
(no real capture of them is stored). Each figure is the best of ``--repeat`` runs of
``load_records`` (read, detect, parse, choose rank, de-duplicate), wall and CPU time.

Verdict latency: a file already holding N records gets the deciding line (a NaN loss, then in a
second run the record where the window mean crosses the target); the figure is the time from the
write to ``follow_and_evaluate`` returning, with ``--poll`` seconds between polls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_deepseek.training import follow_and_evaluate, load_records  # noqa: E402

DATA = ROOT / "tests" / "data" / "training"
TOY_LOG = DATA / "mmengine-toy" / "20261123_124356" / "20261123_124356.log"
TOY_JSON = DATA / "mmengine-toy" / "20261123_124356" / "vis_data" / "20261123_124356.json"
REAL = DATA / "real"
_ITER = re.compile(r"\[\s*\d+/\d+\]")


def mmengine_text(n: int) -> list[str]:
    """The real run's header, then its Iter(train) lines renumbered to n, Exp name every 50."""
    lines = TOY_LOG.read_text().splitlines()
    head = [line for line in lines if "Iter(train)" not in line][:150]
    recs = [line for line in lines if "Iter(train)" in line]
    out = list(head)
    for i in range(1, n + 1):
        out.append(_ITER.sub(f"[{i:5d}/{n}]", recs[(i - 1) % len(recs)], count=1))
        if i % 50 == 0:
            out.append(recs[0][:19] + " - mmengine - INFO - Exp name: deepseek_v2_lite_chat_full_alpaca_e3_32k_varlen")
    return out


def mmengine_json(n: int) -> list[str]:
    """The real vis_data records renumbered."""
    recs = [json.loads(line) for line in TOY_JSON.read_text().splitlines()]
    out = []
    for i in range(1, n + 1):
        d = dict(recs[(i - 1) % len(recs)], iter=i, step=i)
        out.append(json.dumps(d))
    return out


def mindformers(n: int) -> list[str]:
    """The real console's two-line records, renumbered into one long epoch."""
    lines = (REAL / "mindformers" / "console.txt").read_text().splitlines()
    pairs = [(a, b) for a, b in zip(lines, lines[1:]) if "step:[" in a and "samples/s/p" in b]
    out = []
    for i in range(1, n + 1):
        a, b = pairs[(i - 1) % len(pairs)]
        out.append(re.sub(r"step:\[\s*\d+/\s*\d+\]", f"step:[{i:6d}/{n:6d}]", a.replace("Epoch:[  2/  2]", "Epoch:[  1/  2]")))
        out.append(b)
    return out


def hf(n: int) -> list[str]:
    """The real 5.x stdout dicts, replayed."""
    recs = [line for line in (REAL / "hf-trainer" / "console.txt").read_text().splitlines() if line.startswith("{'loss'")]
    return [recs[i % len(recs)] for i in range(n)]


def deepspeed(n: int) -> list[str]:
    """The real per-step timer lines, replayed."""
    recs = [line for line in (REAL / "deepspeed" / "ds_stdout.txt").read_text().splitlines() if "| fwd: " in line]
    return [recs[i % len(recs)] for i in range(n)]


def generated(kind: str) -> Callable[[int], list[str]]:
    """Megatron, torchtitan and JSONL from the test generators."""
    def make(n: int) -> list[str]:
        sys.path.insert(0, str(ROOT))
        from tests.training import synth
        loss = [1.0 + 1.0 / (1 + i) for i in range(n)]
        if kind == "megatron":
            return synth.megatron_lines(loss, total=n)
        if kind == "torchtitan":
            return synth.torchtitan_lines(loss)
        return [json.dumps({"step": i + 1, "loss": v, "lr": 1e-5, "tokens_per_sec": 1000.0}) for i, v in enumerate(loss)]
    return make


CORPORA: dict[str, Callable[[int], list[str]]] = {
    "mmengine (text)": mmengine_text, "mmengine (vis_data JSON)": mmengine_json, "mindformers": mindformers,
    "hf (stdout dicts)": hf, "deepspeed": deepspeed, "megatron": generated("megatron"),
    "torchtitan": generated("torchtitan"), "jsonl": generated("jsonl"),
}


def parse_speed(n: int, repeat: int, tmp: Path) -> list[dict]:
    """lines/s for each corpus."""
    rows = []
    for name, make in CORPORA.items():
        path = tmp / (re.sub(r"\W+", "_", name) + ".log")
        lines = make(n)
        path.write_text("\n".join(lines) + "\n")
        best_wall, best_cpu, recs = 1e9, 1e9, 0
        for _ in range(repeat):
            w, c = time.perf_counter(), time.process_time()
            log = load_records(path)
            best_wall = min(best_wall, time.perf_counter() - w)
            best_cpu = min(best_cpu, time.process_time() - c)
            recs = len(log.records)
        rows.append({"dialect": name, "lines": len(lines), "records": recs, "MB": path.stat().st_size / 1e6,
                     "wall_s": best_wall, "lines_per_s": len(lines) / best_wall, "cpu_lines_per_s": len(lines) / best_cpu})
        path.unlink()
    return rows


def latency(prefill: int, poll: float, tmp: Path, deciding: str) -> float:
    """Seconds from writing the deciding line to the follower's verdict.

    The follower first catches up with ``prefill`` real records (loss held at 0.0100 so that
    nothing is decided); then one line is appended: a NaN loss (fail fast) or a loss of 0.0010
    (converge, raw statistic, below 0.0013).
    """
    body = [line for line in mmengine_text(prefill + 1) if "Iter(train)" in line]
    pre = [re.sub(r"loss: \S+", "loss: 0.0100", line) for line in body[:prefill]]
    last = body[prefill]
    line = re.sub(r"loss: \S+", "loss: nan" if deciding == "nan" else "loss: 0.0010", last)
    path = tmp / f"live_{deciding}_{prefill}.log"
    path.write_text("\n".join(pre) + "\n")
    entry = {"name": "latency", "dialect": "mmengine",
             "converge": {"metric": "loss", "below": 0.0013, "statistic": "raw"}}
    caught_up = threading.Event()

    def progress(msg: str) -> None:
        if msg.startswith(f"{prefill} records"):
            caught_up.set()

    stamp: dict[str, float] = {}

    def write_when_caught_up() -> None:
        caught_up.wait(120)
        time.sleep(poll / 2)
        with path.open("a") as fh:
            fh.write(line + "\n")
        stamp["t"] = time.perf_counter()

    th = threading.Thread(target=write_when_caught_up)
    th.start()
    res = follow_and_evaluate(entry, str(path), poll_s=poll, timeout_s=120, hang_factor=1e9, hang_min_s=1e9,
                              on_progress=progress)
    done = time.perf_counter()
    th.join()
    assert res.verdict == ("fail" if deciding == "nan" else "pass"), res.summary()
    return done - stamp["t"]


def main() -> None:
    """Run and print both benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=96_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--poll", type=float, default=0.1)
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = parse_speed(a.iterations, a.repeat, tmp)
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"{'dialect':26} {'lines':>8} {'records':>8} {'MB':>6} {'wall s':>7} {'lines/s':>10} {'cpu lines/s':>12}")
        for r in rows:
            print(f"{r['dialect']:26} {r['lines']:8d} {r['records']:8d} {r['MB']:6.1f} {r['wall_s']:7.3f} "
                  f"{r['lines_per_s']:10,.0f} {r['cpu_lines_per_s']:12,.0f}")
        lat = []
        for prefill in (1_000, a.iterations):
            for deciding in ("nan", "converge"):
                s = latency(prefill, a.poll, tmp, deciding)
                lat.append({"prefill_records": prefill, "deciding": deciding, "poll_s": a.poll, "latency_s": s})
                print(f"verdict latency ({deciding} line after {prefill} records, poll {a.poll:g} s): {s:.3f} s")
    if a.json:
        Path(a.json).write_text(json.dumps({"parse": rows, "latency": lat}, indent=2))


if __name__ == "__main__":
    main()
