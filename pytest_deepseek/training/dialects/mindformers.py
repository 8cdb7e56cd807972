"""MindFormers (MFLossMonitor): a record spans two lines.

``{ Epoch:[  1/  2], step:[    1/    8], loss:[6.123/6.456], per_step_time: 1752ms, lr: ...,
overflow cond: False, loss_scale: 1.0, global_norm: [1.23]`` then
``  6.2% |███...| 22.42706 samples/s/p  0:00:05 }``. Loss is printed with 3 decimals up to
mid-2025 and 6 after; older lines print ``loss: 6.123`` without the running mean. The last
pipeline stage owns the loss. Start-up lines may carry ``device_num``, ``seq_length`` and
``global_batch_size``, kept in ``info``.
"""

from __future__ import annotations

import re
from typing import ClassVar, Sequence

from ..normalise import parse_number
from ..records import Record
from .base import Parser

NAME = "mindformers"
_NUM = r"\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)\s*"
_HEAD = re.compile(r"\{\s*Epoch:\[\s*(\d{1,18})/\s*(\d{1,18})\],\s*step:\[\s*(\d{1,18})/\s*(\d{1,18})\],(.*)$")
_LOSS_PAIR = re.compile(r"loss:\s*\[" + _NUM + r"/" + _NUM + r"\]")
_LOSS_ONE = re.compile(r"loss:" + _NUM + r"(?:,|$)")
_FIELD = re.compile(r"(per_step_time|time|lr|loss_scale|global_norm|overflow cond):\s*\[?\s*([^,\]\s]+)")
# (?<![\d.]): a search restarting inside a long run of digits fails at once (linear, not quadratic, time)
_SAMPLES = re.compile(r"([-+]?(?<![\d.])[\d.]+(?:[eE][-+]?\d+)?|nan|inf)\s*samples/s/p")
_INFO = re.compile(r"\b(device_num|seq_length|global_batch_size|micro_batch_num|data_parallel"
                   r"|model_parallel|pipeline_stage|batch_size)['\"]?\s*[:=]\s*(\d+)")
_INFO_KEYS = ("device_num", "seq_length", "global_batch_size", "micro_batch_num", "data_parallel",
              "model_parallel", "pipeline_stage", "batch_size")


def sniff(lines: Sequence[str]) -> bool:
    """True when a ``{ Epoch:[...], step:[...]`` record line is present."""
    return any("Epoch:[" in line and "step:[" in line for line in lines)


class MindformersParser(Parser):
    """Joins the two lines of each record; both halves are optional for robustness."""

    name: ClassVar[str] = NAME
    owner: ClassVar[str] = "last"
    units: ClassVar[dict[str, str]] = {
        "per_step_time_ms": "ms", "step_time_s": "s", "samples_per_sec_per_device": "samples/s/p",
        "loss": "", "loss_avg": "",
    }

    def __init__(self) -> None:
        super().__init__()
        self._pending: Record | None = None

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        if "samples/s/p" in text:
            return self._tail(text, lineno)
        pos = text.find("{ Epoch:[")
        if pos < 0:
            pos = text.find("{Epoch:[")
        if pos < 0:
            if not self.records and self._pending is None:
                self._startup(text)
            return False
        m = _HEAD.match(text, pos)
        if not m:
            self.bad(lineno, text, "unreadable MindFormers record")
            return False
        self.finish()
        epoch, _, step, steps = (int(g) for g in m.groups()[:4])
        rest = m.group(5)
        metrics: dict[str, float] = {}
        try:
            lp = _LOSS_PAIR.search(rest)
            if lp:
                metrics["loss"] = parse_number(lp.group(1))
                metrics["loss_avg"] = parse_number(lp.group(2))
            else:
                lo = _LOSS_ONE.search(rest)
                if lo:
                    metrics["loss"] = parse_number(lo.group(1))
            for key, val in _FIELD.findall(rest):
                if key == "overflow cond":
                    metrics["overflow"] = 1.0 if val.lower() == "true" else 0.0
                elif key in ("per_step_time", "time"):
                    ms = parse_number(val.lower().removesuffix("ms"))
                    metrics["per_step_time_ms"] = ms
                    metrics["step_time_s"] = ms / 1000.0
                elif key == "global_norm":
                    metrics["global_norm"] = metrics["grad_norm"] = parse_number(val)
                else:
                    metrics[key] = parse_number(val)
        except ValueError:
            self.bad(lineno, text, "unreadable number")
            return False
        self._pending = Record((epoch - 1) * steps + step, metrics,
                               self.file_rank if rank is None else rank,
                               self.stamps.parse(text[:32]), self.file, lineno, text[pos:], epoch)
        return True

    def _tail(self, text: str, lineno: int) -> bool:
        rec = self._pending
        if rec is None:
            return False
        m = _SAMPLES.search(text)
        if m:
            try:
                rec.metrics["samples_per_sec_per_device"] = parse_number(m.group(1))
            except ValueError:
                self.bad(lineno, text, "unreadable samples/s/p")
            bar = text.find("%")
            rec.line = rec.line + " … " + text[max(0, bar - 6):].strip()
        self.finish()
        return True

    def _startup(self, text: str) -> None:
        if not any(k in text for k in _INFO_KEYS):
            return
        for key, val in _INFO.findall(text):
            self.info.setdefault(key, float(val))

    def finish(self) -> None:
        if self._pending is not None:
            self.records.append(self._pending)
            self._pending = None
