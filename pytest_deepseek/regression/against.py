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
from .fingerprint import differing_fields
from .load import load_test
from .spec import RegressionSpec


def against_baseline(result: GateResult, nodeid: str, run_dir: Path, baseline: RunEvidence, spec: RegressionSpec,
                     *, allow_inconclusive: bool = False) -> GateResult:
    """`result` with its regression checks against `baseline` (a warning when the baseline has no
    such test: a new test is not compared; another warning names every fingerprint field that differs
    from the baseline's test: another model, engine version or hardware is shown, not hidden)."""
    current = load_test(run_dir, nodeid, result)
    pairs, _, _ = match_tests(baseline.tests, [current])
    if not pairs:
        warning = f"not compared: the baseline {baseline.label} has no result for this test"
        return replace(result, warnings=(*result.warnings, warning))
    before = pairs[0][0]
    comparison = compare_test(before, current, spec)
    compared = with_regression(result, comparison.checks(baseline.label), allow_inconclusive=allow_inconclusive)
    changed = differing_fields(before.result.fingerprint, result.fingerprint)
    if not changed:
        return compared
    shown = "; ".join(f"{name} {a} -> {b}" for name, (a, b) in sorted(changed.items()))
    warning = f"measured under other conditions than the baseline {baseline.label}: {shown}"
    return replace(compared, warnings=(*compared.warnings, warning))
