"""Checks and the result of evaluating one training entry (plain-JSON friendly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("pass", "fail", "error", "inconclusive")


@dataclass
class Check:
    """One criterion's verdict: what was expected, what was measured, and the deciding record.

    ``final`` is True when more records cannot change the verdict (a live gate may stop).
    """

    name: str
    metric: str
    op: str
    threshold: float | None
    value: float | None
    verdict: str
    statistic: str
    iterations: tuple[int, int] | None
    record: str | None
    message: str
    final: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    monitor: bool = False  # watches for trouble (fail fast, cross-checks): its pass is never certain early

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        d = asdict(self)
        d["iterations"] = list(self.iterations) if self.iterations else None
        return d


@dataclass
class TrainingResult:
    """All checks of one entry, summary metrics, and the overall verdict."""

    name: str
    checks: list[Check]
    metrics: dict[str, Any]
    verdict: str
    warnings: list[str] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        """True when the verdict is certain: a final failure, or every target check (converge,
        floors, ceilings) final while the monitors (fail fast, cross-checks, ...) still pass."""
        if any(c.verdict in ("fail", "error") and c.final for c in self.checks):
            return True
        targets = [c for c in self.checks if not c.monitor]
        return bool(targets) and all(c.final for c in targets)

    def failures(self) -> list[Check]:
        """Checks that did not pass."""
        return [c for c in self.checks if c.verdict != "pass"]

    def summary(self) -> str:
        """Multi-line text: one line per check."""
        lines = [f"{self.name}: {self.verdict}"]
        lines += [f"  [{c.verdict}] {c.name}: {c.message}" for c in self.checks]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return {"name": self.name, "verdict": self.verdict, "checks": [c.to_dict() for c in self.checks],
                "metrics": self.metrics, "warnings": list(self.warnings)}


def overall(checks: list[Check]) -> str:
    """fail beats error beats inconclusive beats pass; no checks is an error."""
    if not checks:
        return "error"
    vs = {c.verdict for c in checks}
    for v in ("fail", "error", "inconclusive"):
        if v in vs:
            return v
    return "pass"
