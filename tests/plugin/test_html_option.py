"""--deepseek-html writes the HTML report when the run ends; `pytest-deepseek report --html` rebuilds it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project

THRESHOLDS = """\
version: 1
profiles:
  sim-html:
    serving:
      defaults: {dataset: random, warmup: 0, num_prompts: 8, client_health: %s}
      scenarios:
        - {input_len: 32, output_len: 8, concurrency: 2}
""" % LOADED_BOX


def test_the_run_writes_its_html_report_and_report_rebuilds_it(pytester: Any) -> None:
    make_project(pytester, THRESHOLDS)
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=5", "--deepseek-html=out/report.html",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    page = (pytester.path / "out" / "report.html").read_text()
    assert "<svg" in page and "in32-out8-c2" in page and "sim-html" in page
    assert "deepseek: HTML report" in result.stdout.str()
    rebuilt = pytester.path / "again.html"
    done = subprocess.run([sys.executable, "-m", "pytest_deepseek.cli", "report", str(latest_run(pytester)),
                           "--html", str(rebuilt)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "<svg" in rebuilt.read_text() and f"HTML report {rebuilt}" in done.stdout
