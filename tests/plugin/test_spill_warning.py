"""A full disk under the held records (a spill that fails) is said at the end of the run: the
scenario passes on its figures (every record was kept in memory) and the summary names the
warning, xdist off and on. The failure is planted by a conftest, in every process that runs tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.testing import LOADED_BOX

from .helpers import make_project, summary

THRESHOLDS = f"""\
version: 1
profiles:
  sim:
    serving:
      defaults: {{dataset: random, warmup: 1, num_prompts: 16, client_health: {LOADED_BOX}}}
      scenarios:
        - {{input_len: 32, output_len: 8, concurrency: 2, floors: {{output_throughput_per_node: 1}}}}
"""
FULL_DISK = """\
from pytest_deepseek.serving import held


def _full(self, data):
    raise OSError(28, "No space left on device")


held.MEMORY_BUDGET_BYTES = 1
held._SpillFile.append = _full
"""


@pytest.mark.parametrize("xdist", ["0", "2"])
def test_a_failed_spill_passes_on_its_figures_and_is_said(pytester: Any, xdist: str) -> None:
    make_project(pytester, THRESHOLDS)
    (pytester.path / "conftest.py").write_text(FULL_DISK)
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=5", "-n", xdist,
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "PASS with warnings test_serving.py::test_serving[sim:in32-out8-c2]" in out
    [test] = [t for t in summary(pytester)["tests"] if t["kind"] == "serving"]
    [warning] = test["warnings"]
    assert "No space left on device" in warning and "kept in memory" in warning
    assert f"  warning: {warning}" in out.splitlines()
    assert f"warning: {warning}" in Path(test["log"]).read_text()
    assert test["metrics"]["completed"] == 16
