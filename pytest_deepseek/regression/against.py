"""A test just finished in a running session, compared with the same test of a baseline.

The session loads the baseline once (`load_run(resolve(NAME|PATH, results_dir))`); after each gate
test, `against_baseline` reads that test's material back from the run folder (only its own lines),
compares it with its counterpart in the baseline and adds the `regression.<metric>` checks to its
result, whose verdict is decided again by the one rule.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..verdict import GateResult
from .compare import RunEvidence, compare_test, match_tests, with_regression
from .load import load_test
from .spec import RegressionSpec


def against_baseline(result: GateResult, nodeid: str, run_dir: Path, baseline: RunEvidence, spec: RegressionSpec,
                     *, allow_inconclusive: bool = False) -> GateResult:
    """`result` with its regression checks against `baseline` (a warning when the baseline has no
    such test: a new test is not compared)."""
    current = load_test(run_dir, nodeid, result)
    pairs, _, _ = match_tests(baseline.tests, [current])
    if not pairs:
        warning = f"not compared: the baseline {baseline.label} has no result for this test"
        return replace(result, warnings=(*result.warnings, warning))
    comparison = compare_test(pairs[0][0], current, spec)
    return with_regression(result, comparison.checks(baseline.label), allow_inconclusive=allow_inconclusive)
