"""Training gate: one test per `training:` entry and aspect of the selected profile(s).

`convergence` covers fail-fast (NaN/inf, crash messages, skipped or NaN iterations, overflow
streaks), the converge criterion, divergence, plateaus and parsing cross-checks; `speed` covers the
entry's floors and ceilings. A finished log is read whole; with --deepseek-follow or --deepseek-train-cmd the gate
follows the run live and ends as soon as the verdict is certain.
"""

from pytest_deepseek.fixtures import require_pass


def test_training(training_case, training_run):
    outcome = training_run(training_case)
    require_pass(outcome)
