"""Serving gate: one test per scenario of the selected profile(s), or per cell of an ad-hoc grid.

Each test measures its scenario against the endpoint (closed or open loop, warmup excluded), checks
the workload contract, and decides every floor and ceiling of the thresholds file with one-sided
confidence. The table at the end of the run and `deepseek-results/latest` hold the figures.
"""

from pytest_deepseek.fixtures import require_pass


def test_serving(serving_case, serving_run):
    outcome = serving_run(serving_case)
    require_pass(outcome)
