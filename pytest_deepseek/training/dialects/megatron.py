"""Megatron-LM, MindSpeed-LLM and Megatron-DeepSpeed: ``iteration 10/ 100 | key: value | ...``.

Printed by the last rank; the loss is the interval mean, token-weighted over data-parallel ranks.
The ``lm loss`` key is dropped when it is NaN (``number of nan iterations`` counts it).
"""

from __future__ import annotations

import re
from typing import ClassVar, Sequence

from ..normalise import parse_number
from .base import Parser

NAME = "megatron"
_RECORD = re.compile(r"\biteration\s+(\d{1,18})\s*/\s*(\d{1,18})\s*\|(.*)$")
_ALIASES = {
    "lm_loss": "loss",
    "elapsed_time_per_iteration_ms": "elapsed_time_per_iteration_ms",
    "throughput_per_gpu_tflop_s_gpu": "tflops",
    "tflops": "tflops",
    "tokens_per_gpu_per_second_tgs": "tokens_per_sec",
    "learning_rate": "lr",
    "grad_norm": "grad_norm",
    "number_of_skipped_iterations": "skipped_iterations",
    "number_of_nan_iterations": "nan_iterations",
}
_key_cache: dict[str, str] = {}


def _key(raw: str) -> str:
    k = _key_cache.get(raw)
    if k is None:
        k = re.sub(r"[^0-9a-z]+", "_", raw.strip().lower()).strip("_")
        _key_cache[raw] = k
    return k


def sniff(lines: Sequence[str]) -> bool:
    """True when an ``iteration N/ M |`` line is present."""
    return any("iteration" in line and "|" in line and _RECORD.search(line) for line in lines)


class MegatronParser(Parser):
    """One record per ``iteration`` line; other lines are ignored."""

    name: ClassVar[str] = NAME
    owner: ClassVar[str] = "last"
    units: ClassVar[dict[str, str]] = {
        "elapsed_time_per_iteration_ms": "ms", "step_time_s": "s", "tflops": "TFLOP/s per GPU",
        "tokens_per_sec": "tokens/s per GPU", "loss": "",
    }

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        if "iteration" not in text or "|" not in text:
            return False
        m = _RECORD.search(text)
        if not m:
            return False
        metrics: dict[str, float] = {}
        for part in m.group(3).split("|"):
            key, sep, val = part.rpartition(":")
            if not sep or not key.strip():
                continue
            k = _key(key)
            try:
                v = parse_number(val.strip())
            except ValueError:
                self.bad(lineno, text, f"unreadable value for {key.strip()!r}")
                return False
            metrics[k] = v
            alias = _ALIASES.get(k)
            if alias:
                metrics[alias] = v
        if "elapsed_time_per_iteration_ms" in metrics:
            metrics["step_time_s"] = metrics["elapsed_time_per_iteration_ms"] / 1000.0
        self.emit(int(m.group(1)), metrics, rank, lineno, text[m.start():],
                  self.stamps.parse(text[:32]))
        return True
