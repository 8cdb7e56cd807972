"""HF Trainer / TRL / LLaMA-Factory.

Stdout dicts, one per logging step: ``{'loss': 4.03, ...}`` (4.x floats) or
``{'loss': '4.03', ...}`` (5.x strings); they carry no step number, so records are numbered in
order (one per ``logging_steps``). ``checkpoint-N/trainer_state.json`` ``log_history`` carries the
step. LLaMA-Factory's ``trainer_log.jsonl`` has ``current_steps``. The loss is the mean over
``logging_steps``, averaged over ranks. ``train_tokens_per_second`` and LLaMA-Factory's
``throughput`` are cumulative and global: per-step speed is derived from differences.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, ClassVar, Sequence

from ..normalise import parse_number
from ..records import Record
from .base import Parser, json_number, json_step, parse_json

NAME = "hf"
_PAIR = re.compile(r"'(\w+)':\s*(?:'([^']*)'|([^,}\s]+))")
_SKIP = frozenset(("step", "current_steps", "total_steps", "percentage"))


def sniff(lines: Sequence[str]) -> bool:
    """True for stdout loss dicts, trainer_state.json or trainer_log.jsonl."""
    for line in lines:
        s = line.lstrip()
        if s.startswith("{'loss'") or (s.startswith("{'") and "'loss':" in s and "'epoch'" in s):
            return True
        if '"log_history"' in s or ('"current_steps"' in s and '"loss"' in s):
            return True
    return False


def _hms(value: str) -> float:
    total = 0.0
    for part in value.split(":"):
        total = total * 60 + float(part)
    return total


class HfParser(Parser):
    """All three HF shapes; derived per-step speed is computed after de-duplication."""

    name: ClassVar[str] = NAME
    units: ClassVar[dict[str, str]] = {
        "tokens_per_sec_global": "tokens/s, all devices", "step_time_s": "s",
        "train_runtime": "s", "elapsed_s": "s", "epoch": "epochs",
    }

    def __init__(self) -> None:
        super().__init__()
        self._ordinal = 0

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        s = text.lstrip()
        if s.startswith("{'"):
            return self._stdout(s, rank, lineno)
        if s.startswith('{"'):
            return self._jsonl(s, rank, lineno)
        return False

    def _stdout(self, s: str, rank: int | None, lineno: int) -> bool:
        pairs = _PAIR.findall(s)
        keys = {k for k, _, _ in pairs}
        if "loss" not in keys:
            return False  # eval or end-of-training summary
        metrics: dict[str, float] = {}
        try:
            for k, quoted, bare in pairs:
                metrics[k] = parse_number(quoted if quoted else bare)
        except ValueError:
            self.bad(lineno, s, "unreadable number")
            return False
        self._ordinal += 1
        if self._ordinal == 1:
            self.warnings.append(f"{self.file}: HF stdout dicts carry no step number; records are numbered "
                                 "1, 2, ... in order (one per logging_steps); trainer_state.json has the steps")
        self._finish_metrics(metrics)
        self.emit(self._ordinal, metrics, rank, lineno, s)
        return True

    def _jsonl(self, s: str, rank: int | None, lineno: int) -> bool:
        try:
            d = parse_json(s)
        except ValueError:
            self.bad(lineno, s, "unreadable JSON")
            return False
        return self._entry(d, rank, lineno, s)

    def _entry(self, d: Any, rank: int | None, lineno: int, line: str) -> bool:
        if not isinstance(d, dict) or "loss" not in d:
            return False
        raw_step = d.get("step", d.get("current_steps"))
        if json_number(raw_step) is None:
            return False
        step = json_step(raw_step)
        if step is None:
            self.bad(lineno, line, "step is not a whole number below 10^18")
            return False
        metrics: dict[str, float] = {}
        for k, v in d.items():
            if k in _SKIP:
                continue
            number = json_number(v)
            if number is not None:
                metrics[k] = number
            elif k == "elapsed_time" and isinstance(v, str):
                try:
                    metrics["elapsed_s"] = _hms(v)
                except ValueError:
                    pass
        self._finish_metrics(metrics)
        self.emit(step, metrics, rank, lineno, line)
        return True

    @staticmethod
    def _finish_metrics(metrics: dict[str, float]) -> None:
        if "learning_rate" in metrics:
            metrics.setdefault("lr", metrics["learning_rate"])

    def feed_whole(self, text: str) -> bool:
        head = text.lstrip()[:4096]
        if not head.startswith("{") or '"log_history"' not in text[:200_000]:
            return False
        try:
            state = parse_json(text)
        except ValueError:
            self.bad(1, head[:200], "unreadable trainer_state.json")
            return True
        history = state.get("log_history") if isinstance(state, dict) else None
        if not isinstance(history, list):
            self.bad(1, head[:200], "trainer_state.json without log_history")
            return True
        for i, entry in enumerate(history):
            self._entry(entry, None, i + 1, json.dumps(entry, sort_keys=True))
        batch = json_number(state.get("train_batch_size"))
        if batch is not None:
            self.info["train_batch_size"] = batch
        return True

    @staticmethod
    def postprocess(records: list[Record]) -> None:
        """Per-step time and global tokens/s from the cumulative counters."""
        prev: Record | None = None
        for rec in records:
            m = rec.metrics
            runtime = m.get("train_runtime", m.get("elapsed_s"))
            tokens = m.get("num_input_tokens_seen", m.get("total_tokens"))
            if prev is not None and runtime is not None:
                pm = prev.metrics
                p_runtime = pm.get("train_runtime", pm.get("elapsed_s"))
                steps = rec.iteration - prev.iteration
                if p_runtime is not None and runtime > p_runtime and steps > 0:
                    dt = runtime - p_runtime
                    m["step_time_s"] = dt / steps
                    p_tokens = pm.get("num_input_tokens_seen", pm.get("total_tokens"))
                    if tokens is not None and p_tokens is not None and not math.isnan(tokens):
                        m["tokens_per_sec_global"] = (tokens - p_tokens) / dt
            prev = rec
