"""Accuracy gate: one test per dataset of the selected profile(s)' `accuracy:` section.

The profile's backend (evalscope, OpenCompass or lm-eval) evaluates the endpoint once per run, or
an earlier evaluation's results are read with --deepseek-eval-results. Each dataset passes on `min:` or on
`reference:` ± `tolerance:` judged against binomial noise (paired McNemar with per-item reference
results); an errored, incomplete or short run is an ERROR, never a pass.
"""

from pytest_deepseek.fixtures import require_pass


def test_accuracy(accuracy_case, accuracy_run):
    outcome = accuracy_run(accuracy_case)
    require_pass(outcome)
