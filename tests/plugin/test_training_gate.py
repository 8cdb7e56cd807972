"""The training gate as users run it: the shipped suite on real logs, finished and live."""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .helpers import REPO, make_project, summary

TOY = REPO / "tests" / "data" / "training" / "mmengine-toy"
MINDFORMERS = REPO / "tests" / "data" / "training" / "real" / "mindformers"

PROFILE = """\
version: 1
profiles:
  toy:
    training:
      - name: toy
        log: logs/toy
        converge: {{metric: loss, below: 0.0013, within: {within}, statistic: window_mean, window: 10}}
        floors: {{tokens_per_sec: {floor}}}
"""


def project(pytester, within=2000, floor=100):
    make_project(pytester, PROFILE.format(within=within, floor=floor), suites=("test_training.py",))
    shutil.copytree(TOY, pytester.path / "logs" / "toy")


def test_converging_run_passes_both_aspects(pytester):
    project(pytester)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_training?toy:toy:convergence?*PASSED*", "*test_training?toy:toy:speed?*PASSED*"])
    tests = summary(pytester)["tests"]
    convergence = next(t for t in tests if t["aspect"] == "convergence")
    assert convergence["kind"] == "training" and convergence["verdict"] == "pass"
    assert convergence["metrics"]["dialect"] == "mmengine"
    assert convergence["metrics"]["converge.first_crossing_iteration"] == 1067


def test_crossing_after_within_fails_with_the_deciding_record(pytester):
    project(pytester, within=1066)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "FAIL: training toy toy:convergence" in out and "window_mean(10)" in out
    assert "deciding record:" in out and "Traceback" not in out


def test_a_fast_run_that_never_converges_reads_clearly(pytester):
    project(pytester, within=500, floor=1)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*toy:toy:convergence*FAILED*", "*toy:toy:speed*PASSED*"])


def test_missing_log_is_an_error_naming_the_file(pytester):
    make_project(pytester, PROFILE.format(within=2000, floor=1), suites=("test_training.py",))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    assert "logs/toy" in result.stdout.str()
    assert {t["verdict"] for t in summary(pytester)["tests"]} == {"error"}


def test_mindformers_seed_speed_target(pytester):
    thresholds = textwrap.dedent(f"""\
        version: 1
        profiles:
          mf:
            training:
              - name: mf
                log: {MINDFORMERS / 'output'}
                dialect: mindformers
                seq_length: 16
                global_batch_size: 8
                devices: 1
                floors: {{tokens_per_sec_per_device: 0.001}}
        """)
    make_project(pytester, thresholds, suites=("test_training.py",))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # That real MindFormers run produced a NaN loss: convergence fails fast, speed is still measured.
    result.assert_outcomes(passed=1, failed=1)
    assert "loss is nan at iteration" in result.stdout.str()
    speed = next(t for t in summary(pytester)["tests"] if t["aspect"] == "speed")
    assert speed["checks"][0]["name"] == "floor.tokens_per_sec_per_device" and speed["checks"][0]["value"] > 0


def _live_job(pytester, *, below: float, loss: str, sleep_s: float) -> Path:
    """A project whose one training entry converges below `below`, and a job script printing the
    loss expression `loss` (of `step`) every `sleep_s`; returns the script."""
    make_project(pytester, textwrap.dedent(f"""\
        version: 1
        profiles:
          live:
            training:
              - name: live
                dialect: jsonl
                converge: {{metric: loss, below: {below}, statistic: raw}}
        """), suites=("test_training.py",))
    script = pytester.path / "train.py"
    script.write_text(textwrap.dedent(f"""\
        import json, time
        for step in range(1, 100000):
            print(json.dumps({{"step": step, "loss": {loss}}}), flush=True)
            time.sleep({sleep_s})
        """))
    return script


def test_train_cmd_is_stopped_once_decided(pytester):
    script = _live_job(pytester, below=0.5, loss="1.0 / step", sleep_s=0.02)
    result = pytester.runpytest_subprocess(f"--deepseek-train-cmd={sys.executable} {script}", "--deepseek-stop-when-decided",
                                           "--deepseek-follow-timeout=60", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    data = summary(pytester)["tests"][0]
    assert data["metrics"]["stopped_early"] is True
    assert data["metrics"]["train_cmd_exit_code"] != 0  # ended by the gate, not by itself


def test_following_a_log_stops_at_the_session_deadline(pytester):
    """A job that never decides, a follow timeout of an hour, a session deadline of a few seconds: the
    follow ends near the deadline, inconclusive (never a pass), the job stopped."""
    script = _live_job(pytester, below=0.001, loss="1.0", sleep_s=0.05)
    started = time.monotonic()
    result = pytester.runpytest_subprocess(f"--deepseek-train-cmd={sys.executable} {script}",
                                           "--deepseek-follow-timeout=3600", "--deepseek-session-deadline=6s",
                                           "-p", "no:cacheprovider")
    took = time.monotonic() - started
    assert took < 6 + 30, took  # start-up and teardown on a busy 2-core box; without the cap: an hour
    data = summary(pytester)["tests"][0]
    assert data["verdict"] in ("inconclusive", "error") and data["verdict"] != "pass", data
    assert any("wall limit" in str(c.get("message", "")) or "wall limit" in str(c.get("details", ""))
               for c in data["checks"]), data["checks"]
    assert "passed" not in result.parseoutcomes()


@pytest.mark.parametrize("xdist_args", [("-n0",), ("-n2",)])
def test_xdist_evaluates_each_entry_once(pytester, xdist_args):
    project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist_args)
    result.assert_outcomes(passed=2)
    assert len(summary(pytester)["tests"]) == 2
