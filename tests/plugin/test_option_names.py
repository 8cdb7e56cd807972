"""Our options never collide with those of widely used pytest plugins, and live beside the real
pytest-profiling (installed with the test extra), whose `--profile` crashed every run before."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pytest_deepseek.settings import OPTIONS

OTHER_PLUGINS_OPTIONS = Path(__file__).parent.parent / "data" / "plugin_options.txt"


def _other_options() -> set[str]:
    lines = OTHER_PLUGINS_OPTIONS.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.startswith("--")}


def test_no_option_collides_with_a_widely_used_plugin() -> None:
    others = _other_options()
    assert "--profile" in others and "--timeout" in others and "--benchmark-json" in others  # the list is real
    ours = {spec.flag for spec in OPTIONS}
    assert not ours & others


def test_every_option_but_endpoint_carries_the_prefix() -> None:
    unprefixed = [spec.flag for spec in OPTIONS if not spec.flag.startswith("--deepseek-")]
    assert unprefixed == ["--endpoint"]


@pytest.fixture
def pytest_profiling_installed() -> None:
    # The test extra installs it: its absence is a broken test environment, not a reason to skip.
    assert importlib.util.find_spec("pytest_profiling") is not None, 'pip install -e ".[test]"'


def test_help_lists_both_plugins_options(pytester: pytest.Pytester, pytest_profiling_installed: None) -> None:
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0, result.stderr.str()
    out = result.stdout.str()
    assert "--profile " in out and "--deepseek-profile=NAME" in out and "--endpoint=URL" in out


def test_gate_run_beside_pytest_profiling(pytester: pytest.Pytester, pytest_profiling_installed: None) -> None:
    pytester.makefile(".yaml", thresholds="""
version: 1
profiles:
  toy:
    training:
      - name: toy
        log: toy.jsonl
        dialect: jsonl
        converge: {metric: loss, below: 1.0, within: 5, statistic: raw}
""")
    pytester.makefile(".jsonl", toy="\n".join(f'{{"step": {i}, "loss": {2.0 / i}}}' for i in range(1, 7)))
    pytester.makepyfile(test_gate="""
from pytest_deepseek.fixtures import require_pass

def test_training(training_case, training_run):
    require_pass(training_run(training_case))
""")
    result = pytester.runpytest_subprocess("--deepseek-profile=toy", "-v", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_training?toy:toy:convergence? PASSED*"])
