"""torchtitan: ``step: 10  loss:  2.3456  memory: 12.34GiB(15.6%)  tps: 1,234  tflops: 56.7  mfu: 12.3%``.

The loss is global; ``tps`` is tokens per second per device.
"""

from __future__ import annotations

import re
from typing import ClassVar, Sequence

from ..normalise import parse_number
from .base import Parser

NAME = "torchtitan"
_RECORD = re.compile(r"\bstep:\s*(\d{1,18})\s+(.*\bloss:.*)$")
# (?<!\w): a search restarting inside a long word fails at once (linear, not quadratic, time)
_PAIR = re.compile(r"(?<!\w)(\w+):\s+(\S+)")
_MEMORY = re.compile(r"([\d.]+)\s*GiB(?:\(([\d.]+)%\))?")


def sniff(lines: Sequence[str]) -> bool:
    """True when a ``step: N  loss: x`` line is present."""
    return any("step:" in line and "loss:" in line and _RECORD.search(line) for line in lines)


class TorchtitanParser(Parser):
    """One record per ``step:`` line."""

    name: ClassVar[str] = NAME
    units: ClassVar[dict[str, str]] = {
        "memory_gib": "GiB", "memory_pct": "%", "tps": "tokens/s per device",
        "tokens_per_sec": "tokens/s per device", "tflops": "TFLOP/s per device", "mfu_pct": "%",
    }

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        if "step:" not in text or "loss:" not in text:
            return False
        m = _RECORD.search(text)
        if not m:
            return False
        metrics: dict[str, float] = {}
        try:
            for key, val in _PAIR.findall(m.group(2)):
                if key == "memory":
                    mm = _MEMORY.match(val)
                    if mm:
                        metrics["memory_gib"] = float(mm.group(1))
                        if mm.group(2):
                            metrics["memory_pct"] = float(mm.group(2))
                elif key == "mfu":
                    metrics["mfu_pct"] = parse_number(val.rstrip("%"))
                else:
                    metrics[key] = parse_number(val.rstrip("%"))
        except ValueError:
            self.bad(lineno, text, "unreadable number")
            return False
        if "tps" in metrics:
            metrics["tokens_per_sec"] = metrics["tps"]
        self.emit(int(m.group(1)), metrics, rank, lineno, text[m.start():], self.stamps.parse(text[:40]))
        return True
