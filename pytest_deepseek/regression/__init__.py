"""Regression checks between two runs: a candidate run against a baseline, metric by metric.

- `spec`: the `regression:` thresholds fragment (tolerances, `3%` relative or plain absolute) and
  which way each metric is better;
- `evidence`: a run's figure and bounds for a metric, from the gates' own statistics (pure);
- `change`: bounds on a change from both runs' bounds, or from paired accuracy items (pure);
- `compare`: tests matched across runs, each metric's change against its tolerance, the verdict,
  `regression.<metric>` checks (pure);
- `fingerprint`: the conditions that differ between the two runs (pure);
- `load`: a run folder read into evidence; `baseline`: save, find and read named baselines;
- `against`: a test of a running session compared with the baseline, its result with the checks;
- `table`: the comparison as text tables.

Attributes are imported on first use: importing the package costs nothing.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "REGRESSION_SECTION": "spec",
    "RegressionSpec": "spec",
    "Tolerance": "spec",
    "RunComparison": "compare",
    "CaseComparison": "compare",
    "compare_runs": "compare",
    "compare_test": "compare",
    "with_regression": "compare",
    "run_differences": "fingerprint",
    "load_run": "load",
    "load_test": "load",
    "against_baseline": "against",
    "BaselineError": "baseline",
    "load_results": "baseline",
    "resolve": "baseline",
    "save_baseline": "baseline",
    "render_comparison": "table",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
