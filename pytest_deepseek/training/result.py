"""The result of evaluating one training entry, and the shape of its checks (plain-JSON friendly).

Checks are `verdict.Check`s; what only training has lives in their details: `statistic` (how the
value was summarised), `iterations` ([first, last] iteration looked at), `record` (the deciding log
line with its place), `final` (more records cannot change the verdict: a live gate may stop) and
`monitor` (a watch for trouble such as fail fast or a cross-check: its pass is never certain early).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..verdict import Check, Verdict, combine
from .spec import CHECK_NONE


def training_check(name: str, verdict: Verdict, message: str, *, metric: str = "", op: str = "",
                   threshold: float | None = None, value: float | None = None, statistic: str = "",
                   iterations: Iterable[int] | None = None, record: str | None = None, final: bool = False,
                   **extra: Any) -> Check:
    """A check with the training details; `extra` (figures such as the first crossing) is kept under
    the check's `details` key, as summary.json has always had it."""
    return Check(name=name, verdict=verdict, message=message, metric=metric, op=op, threshold=threshold,
                 value=value, details={"statistic": statistic, "iterations": list(iterations) if iterations else None,
                                       "record": record, "final": final, "monitor": False, "details": dict(extra)})


def error_check(name: str, message: str) -> Check:
    """A check that could not be made at all (unusable entry, unreadable log): a final ERROR."""
    return training_check(name, "error", message, final=True)


def is_final(check: Check) -> bool:
    """True when more records cannot change the check's verdict."""
    return bool(check.details.get("final"))


def is_monitor(check: Check) -> bool:
    """True for a watch for trouble (its pass only becomes certain when the log ends)."""
    return bool(check.details.get("monitor"))


def as_monitor(check: Check) -> Check:
    """The check marked as a monitor."""
    return replace(check, details={**check.details, "monitor": True})


@dataclass
class TrainingResult:
    """All checks of one entry, summary metrics and warnings; the verdict is `verdict.combine`'s.

    A result never has zero checks: an empty list becomes one ERROR check (nothing was decided).
    """

    name: str
    checks: list[Check]
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.checks:
            self.checks.append(error_check(CHECK_NONE, f"no checks: training entry {self.name!r} decided nothing"))

    @property
    def verdict(self) -> Verdict:
        """ERROR > FAIL > INCONCLUSIVE > PASS over the checks."""
        return combine(c.verdict for c in self.checks)

    @property
    def decided(self) -> bool:
        """True when the verdict is certain: a final failure, or every target check (converge,
        floors, ceilings) final while the monitors (fail fast, cross-checks, ...) still pass."""
        if any(c.verdict in ("fail", "error") and is_final(c) for c in self.checks):
            return True
        targets = [c for c in self.checks if not is_monitor(c)]
        return bool(targets) and all(is_final(c) for c in targets)

    def failures(self) -> list[Check]:
        """Checks that did not pass."""
        return [c for c in self.checks if c.verdict != "pass"]

    def summary(self) -> str:
        """Multi-line text: one line per check."""
        lines = [f"{self.name}: {self.verdict}"]
        lines += [f"  [{c.verdict}] {c.name}: {c.message}" for c in self.checks]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return {"name": self.name, "verdict": self.verdict, "checks": [c.to_json() for c in self.checks],
                "metrics": self.metrics, "warnings": list(self.warnings)}
