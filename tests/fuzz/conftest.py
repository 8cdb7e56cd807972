"""Hypothesis budgets for the fuzz suites.

`fuzz-ci` (the default here) runs a fixed, reproducible set of examples: derandomized, no example
database, no deadline (a busy CI machine is not a slow parser). Choose another profile with
`HYPOTHESIS_PROFILE=fuzz-deep pytest tests/fuzz`, or run `benchmarks/fuzz.py --examples N`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 200

settings.register_profile(
    "fuzz-ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
settings.register_profile("fuzz-deep", parent=settings.get_profile("fuzz-ci"), max_examples=2000, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz-ci"))
