"""A test just finished in a running session, compared with the same test of a baseline.

The session loads the baseline once (`load_run(resolve(NAME|PATH, results_dir))`); after each gate
test, `compare_with_baseline` reads that test's material back from the run folder (only its own
lines) and compares it with its counterpart in the baseline; the comparison (kept in the run folder,
see `recorded`) adds the `regression.<metric>` checks to the test's result, whose verdict is decided
again by the one rule.
"""

from __future__ import annotations

from pathlib import Path

from ..verdict import GateResult
from .compare import RunEvidence, compare_test, match_tests
from .fingerprint import differing_fields
from .load import load_test
from .recorded import BaselineComparison
from .spec import RegressionSpec


def against_baseline(result: GateResult, nodeid: str, run_dir: Path, baseline: RunEvidence, spec: RegressionSpec,
                     *, allow_inconclusive: bool = False) -> GateResult:
    """`result` with its regression checks against `baseline` and its warnings (`compare_with_baseline`)."""
    return compare_with_baseline(result, nodeid, run_dir, baseline, spec,
                                 allow_inconclusive=allow_inconclusive).apply(result)


def compare_with_baseline(result: GateResult, nodeid: str, run_dir: Path, baseline: RunEvidence,
                          spec: RegressionSpec, *, allow_inconclusive: bool = False) -> BaselineComparison:
    """What comparing `result` with `baseline` adds to it: the regression checks; a warning when
    the baseline has no such test (a new test is not compared); another warning naming every
    fingerprint field that differs from the baseline's test (another model, engine version or
    hardware is shown, not hidden)."""
    current = load_test(run_dir, nodeid, result)
    pairs, _, _ = match_tests(baseline.tests, [current])
    if not pairs:
        return BaselineComparison(nodeid, baseline.label,
                                  warnings=(f"not compared: the baseline {baseline.label} has no result for this test",),
                                  allow_inconclusive=allow_inconclusive)
    before = pairs[0][0]
    checks = tuple(compare_test(before, current, spec).checks(baseline.label))
    changed = differing_fields(before.result.fingerprint, result.fingerprint)
    shown = "; ".join(f"{name} {a} -> {b}" for name, (a, b) in sorted(changed.items()))
    warnings = (f"measured under other conditions than the baseline {baseline.label}: {shown}",) if changed else ()
    return BaselineComparison(nodeid, baseline.label, checks, warnings, allow_inconclusive)
