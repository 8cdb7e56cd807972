"""Plain JSONL: any file of JSON objects with a step key; every number is a metric."""

from __future__ import annotations

from typing import ClassVar, Sequence

from .base import Parser, json_metrics, json_step, parse_json

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
            d = parse_json(s)
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
            d = parse_json(s)
        except ValueError:
            self.bad(lineno, s, "unreadable JSON")
            return False
        if not isinstance(d, dict):
            self.bad(lineno, s, "not a JSON object")
            return False
        key = next((k for k in STEP_KEYS if isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool)),
                   None)
        if key is None:
            return False
        step = json_step(d[key])
        if step is None:
            self.bad(lineno, s, f"{key} is not a whole number below 10^18")
            return False
        metrics = json_metrics(d, STEP_KEYS)
        r = json_step(d.get("rank"))
        self.emit(step, metrics, rank if r is None else r, lineno, s)
        return True
