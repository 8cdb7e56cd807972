"""README command 1: the shipped suites and thresholds.yaml against the embedded simulator pass."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from .helpers import REPO, summary


@pytest.mark.eval_backend
@pytest.mark.skipif(importlib.util.find_spec("evalscope") is None,
                    reason='README command 1 installs evalscope: pip install -e ".[evalscope]"')
def test_readme_command_one(pytester):
    shutil.copytree(REPO / "suites", pytester.path / "suites")
    shutil.copy(REPO / "thresholds.yaml", pytester.path / "thresholds.yaml")
    result = pytester.runpytest_subprocess("suites/", "--endpoint=sim://deepseek-v3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=17)
    out = result.stdout.str()
    assert "SIMULATED engine: not a release verdict" in out and "(example)" in out
    kinds = {t["kind"] for t in summary(pytester)["tests"]}
    assert kinds == {"serving", "training", "accuracy"}
