"""DeepSpeed engine prints (``log_level: info`` is needed since late 2025).

``[Rank 0] step=10, skipped=0, lr=[...], mom=[...]``;
``epoch=0/micro_step=10/global_step=10, RunningAvgSamplesPerSec=..., CurrSamplesPerSec=...,
MemAllocated=1.2GB, MaxMemAllocated=3.4GB``; with ``wall_clock_breakdown`` one
``[Rank 0] time (ms) | fwd: .. | bwd: .. | step: ..`` line per step (numbered by order).
No loss is printed; speed is samples/s per rank.
"""

from __future__ import annotations

import re
from typing import ClassVar, Sequence

from ..normalise import parse_number
from ..records import Record
from .base import Parser

NAME = "deepspeed"
_RANK = re.compile(r"\[Rank (\d{1,9})\]")
_STEP = re.compile(r"\bstep=(\d{1,18}), skipped=(\d+), lr=\[([^\]]*)\]")
_THROUGHPUT = re.compile(r"global_step=(\d{1,18}),\s*(.*)$")
# (?<!\w): a search restarting inside a long word fails at once (linear, not quadratic, time)
_TPAIR = re.compile(r"(?<!\w)(\w+)=([-+\d.eE]+|nan|inf)\s*(GB)?")
_TIMER = re.compile(r"time \(ms\) \| (fwd: .*)$")
_THROUGHPUT_NAMES = {"CurrSamplesPerSec": "samples_per_sec", "RunningAvgSamplesPerSec": "running_avg_samples_per_sec",
                     "MemAllocated": "mem_allocated_gb", "MaxMemAllocated": "max_mem_allocated_gb"}


def sniff(lines: Sequence[str]) -> bool:
    """True for DeepSpeed progress, throughput or timer lines."""
    for line in lines:
        if "skipped=" in line and "step=" in line and "lr=[" in line:
            return True
        if "RunningAvgSamplesPerSec=" in line or ("time (ms) | fwd:" in line and "[Rank " in line):
            return True
    return False


class DeepspeedParser(Parser):
    """Merges the lines of one step into one record keyed by the global step."""

    name: ClassVar[str] = NAME
    units: ClassVar[dict[str, str]] = {
        "samples_per_sec": "samples/s per rank", "running_avg_samples_per_sec": "samples/s per rank",
        "mem_allocated_gb": "GB", "max_mem_allocated_gb": "GB", "fwd_ms": "ms", "bwd_ms": "ms",
        "step_ms": "ms", "step_time_s": "s",
    }

    def __init__(self) -> None:
        super().__init__()
        self._by_step: dict[tuple[int | None, int], Record] = {}
        self._timer_count: dict[int | None, int] = {}

    def _rank(self, text: str, rank: int | None) -> int | None:
        if rank is not None:
            return rank
        m = _RANK.search(text)
        if m:
            return int(m.group(1))
        # DeepSpeed's progress lines come from rank 0 (log_dist ranks=[0]) even without the tag
        return self.file_rank if self.file_rank is not None else 0

    def _record(self, step: int, rank: int | None, lineno: int, text: str) -> Record:
        rec = self._by_step.get((rank, step))
        if rec is None:
            rec = Record(step, {}, rank, self.stamps.parse(text[:40]), self.file, lineno, text)
            self._by_step[(rank, step)] = rec
            self.records.append(rec)
        else:
            rec.line = rec.line + " … " + text
        return rec

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        if "time (ms) | fwd:" in text:
            m = _TIMER.search(text)
            if not m:
                return False
            r = self._rank(text, rank)
            n = self._timer_count.get(r, 0) + 1
            self._timer_count[r] = n
            metrics: dict[str, float] = {}
            try:
                for part in m.group(1).split("|"):
                    k, _, v = part.partition(":")
                    metrics[k.strip() + "_ms"] = parse_number(v.strip())
            except ValueError:
                self.bad(lineno, text, "unreadable timer value")
                return False
            rec = self._record(n, r, lineno, text[m.start():])
            rec.metrics.update(metrics)
            parts = [metrics.get(k, 0.0) for k in ("fwd_ms", "bwd_ms", "step_ms")]
            rec.metrics["step_time_s"] = sum(parts) / 1000.0
            return True
        if "skipped=" in text:
            m = _STEP.search(text)
            if not m:
                return False
            rec = self._record(int(m.group(1)), self._rank(text, rank), lineno, text[m.start():])
            rec.metrics["skipped_iterations"] = float(m.group(2))
            lr = m.group(3).split(",")[0].strip()
            if lr:
                try:
                    rec.metrics["lr"] = parse_number(lr)
                except ValueError:
                    self.bad(lineno, text, "unreadable lr")
            return True
        if "SamplesPerSec=" in text:
            m = _THROUGHPUT.search(text)
            if not m:
                return False
            try:
                values = {_THROUGHPUT_NAMES.get(key, key): parse_number(val)
                          for key, val, _gb in _TPAIR.findall(m.group(2))}
            except ValueError:
                self.bad(lineno, text, "unreadable throughput value")
                return False
            rec = self._record(int(m.group(1)), self._rank(text, rank), lineno, text[m.start():])
            rec.metrics.update(values)
            return True
        return False
