"""A test's comparison with the baseline, as the session made it, kept in the run folder.

With `--deepseek-baseline`, a session adds `regression.<metric>` checks and warnings to each gate
test's result. The baseline is another folder, which may be moved or deleted later, so the session
writes what the comparison added, one line per test, to the run's `regression.jsonl`, and
`pytest-deepseek report RUN_DIR` applies it again to the result it rebuilds from the records: a
test that failed against its baseline stays failed after a rebuild.

A line applies to the attempt of its test that started before it (a test run again in a continued
run without a baseline is not given its earlier attempt's comparison).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..verdict import Check, GateResult
from .compare import with_regression

REGRESSION_FILE = "regression.jsonl"


@dataclass(frozen=True)
class BaselineComparison:
    """What comparing one test with the baseline adds to its result."""

    nodeid: str
    baseline: str  # the baseline's label (its name or path)
    checks: tuple[Check, ...] = ()
    warnings: tuple[str, ...] = ()
    allow_inconclusive: bool = False
    at: float = field(default_factory=time.time)  # when the comparison was made

    def apply(self, result: GateResult) -> GateResult:
        """`result` with the regression checks (its verdict decided again by the one rule) and warnings;
        without checks (a test the baseline does not have) its verdict stays as it is."""
        compared = with_regression(result, self.checks, allow_inconclusive=self.allow_inconclusive) \
            if self.checks else result
        return replace(compared, warnings=(*compared.warnings, *self.warnings))

    def to_json(self) -> dict[str, Any]:
        """The `regression.jsonl` line (plain JSON)."""
        return {"nodeid": self.nodeid, "baseline": self.baseline, "checks": [c.to_json() for c in self.checks],
                "warnings": list(self.warnings), "allow_inconclusive": self.allow_inconclusive, "at": self.at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BaselineComparison":
        """Inverse of `to_json`."""
        return cls(nodeid=str(data["nodeid"]), baseline=str(data.get("baseline") or ""),
                   checks=tuple(Check.from_json(c) for c in data.get("checks") or ()),
                   warnings=tuple(str(w) for w in data.get("warnings") or ()),
                   allow_inconclusive=bool(data.get("allow_inconclusive")), at=float(data.get("at") or 0.0))


def latest_comparisons(lines: Iterable[Mapping[str, Any]]) -> dict[str, BaselineComparison]:
    """Test id -> its last comparison, from `regression.jsonl` lines (a line that is not one is skipped)."""
    latest: dict[str, BaselineComparison] = {}
    for line in lines:
        try:
            comparison = BaselineComparison.from_json(line)
        except (KeyError, TypeError, ValueError):
            continue
        latest[comparison.nodeid] = comparison
    return latest


def compared_again(result: GateResult, started_at: float, comparison: BaselineComparison | None) -> GateResult:
    """A rebuilt result with the comparison its session made, when that comparison is of this
    attempt (made after the attempt started); else the result as it is."""
    if comparison is None or comparison.at < started_at:
        return result
    return comparison.apply(result)
