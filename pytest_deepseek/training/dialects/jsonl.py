"""Plain JSONL: any file of JSON objects with a step key; every number is a metric."""

from __future__ import annotations

import json
from typing import ClassVar, Sequence

from .base import Parser

NAME = "jsonl"
STEP_KEYS = ("step", "iteration", "iter", "global_step", "_step", "current_steps")


def sniff(lines: Sequence[str]) -> bool:
    """True when the first JSON object line has a step key."""
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if not s.startswith("{"):
            continue
        try:
            d = json.loads(s)
        except ValueError:
            continue
        return isinstance(d, dict) and any(k in d for k in STEP_KEYS)
    return False


class JsonlParser(Parser):
    """One record per JSON object with a step key."""

    name: ClassVar[str] = NAME

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        s = text.strip()
        if not s.startswith("{"):
            if s:
                self.bad(lineno, s, "not a JSON object")
            return False
        try:
            d = json.loads(s)
        except ValueError:
            self.bad(lineno, s, "unreadable JSON")
            return False
        if not isinstance(d, dict):
            self.bad(lineno, s, "not a JSON object")
            return False
        step = next((d[k] for k in STEP_KEYS if isinstance(d.get(k), (int, float))), None)
        if step is None:
            return False
        metrics = {k: float(v) for k, v in d.items()
                   if k not in STEP_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}
        r = d.get("rank")
        self.emit(int(step), metrics, int(r) if isinstance(r, int) else rank, lineno, s)
        return True
