"""The accuracy gate as users run it: judging earlier results, and a missing backend."""

from __future__ import annotations

import importlib.util
import shutil
import textwrap

import pytest

from .helpers import REPO, make_project, summary

RESULTS = REPO / "tests" / "data" / "eval-results"


def profile(backend: str, datasets: str) -> str:
    return textwrap.dedent(f"""\
        version: 1
        profiles:
          gate:
            accuracy:
              backend: {backend}
              datasets:
        """) + textwrap.indent(textwrap.dedent(datasets), " " * 8)


def test_opencompass_results_seed_style(pytester):
    shutil.copytree(RESULTS / "opencompass", pytester.path / "outputs")
    make_project(pytester, profile("opencompass", """\
        - {name: cluewsc-dev, reference: 66.67, tolerance: 1.0}
        - {name: math_500, min: 0.0}
        """), suites=("test_accuracy.py",))
    run = next((pytester.path / "outputs").iterdir())
    # The first of the run's two summaries, where math-500 failed ('-'); the folder alone reads the latest.
    first_summary = sorted((run / "summary").glob("summary_*.csv"))[0]
    result = pytester.runpytest_subprocess(f"--deepseek-eval-results={first_summary}", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*gate:cluewsc-dev*PASSED*", "*gate:math_500*FAILED*"])
    tests = {t["dataset"]: t for t in summary(pytester)["tests"]}
    assert tests["cluewsc-dev"]["metrics"]["score"] == pytest.approx(66.67)
    assert tests["math_500"]["verdict"] == "error"  # OpenCompass printed '-': a failed set is never a pass
    out = result.stdout.str()
    assert "ERROR: accuracy gate math_500" in out and "results_dir: " in out


def test_latest_opencompass_summary_is_read_by_default(pytester):
    make_project(pytester, profile("opencompass", """\
        - {name: math_500, min: 75.0}
        - {name: mmlu, min: 40.0}
        """), suites=("test_accuracy.py",))
    run = next((RESULTS / "opencompass").iterdir())
    result = pytester.runpytest_subprocess(f"--deepseek-eval-results={run}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    tests = {t["dataset"]: t for t in summary(pytester)["tests"]}
    assert tests["math_500"]["metrics"]["score"] == pytest.approx(80.0)
    assert tests["mmlu"]["metrics"]["score"] == pytest.approx(50.0)  # mean of the lukaemon_mmlu_* subsets


def test_errored_evalscope_item_fails_the_gate(pytester):
    make_project(pytester, profile("evalscope", """\
        - {name: mmlu, min: 50.0}
        """), suites=("test_accuracy.py",))
    result = pytester.runpytest_subprocess(f"--deepseek-eval-results={RESULTS / 'evalscope-errored'}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    entry = summary(pytester)["tests"][0]
    assert entry["verdict"] == "error" and entry["metrics"]["errored"] >= 1


@pytest.mark.skipif(shutil.which("opencompass") is not None, reason="opencompass is on PATH here")
def test_missing_backend_names_the_install_command(pytester):
    # OpenCompass lives in its own environment: without --deepseek-opencompass-python (or `opencompass` on
    # PATH) it is missing, and the error says how to install it.
    make_project(pytester, profile("opencompass", """\
        - {name: mmlu, min: 50.0}
        """), suites=("test_accuracy.py",))
    result = pytester.runpytest_subprocess("--endpoint=sim://fast", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "pip install opencompass==0.5.4" in out and "--deepseek-opencompass-python" in out


@pytest.mark.parametrize("xdist_args", [(), ("-n2",)])
def test_no_endpoint_and_no_results_is_never_green(pytester, xdist_args):
    make_project(pytester, profile("lm-eval", """\
        - {name: mmlu, min: 50.0}
        """), suites=("test_accuracy.py",))
    result = pytester.runpytest_subprocess(*xdist_args, "-p", "no:cacheprovider")
    if xdist_args:  # workers collect: the test itself is the error
        result.assert_outcomes(failed=1)
        assert "no endpoint to evaluate" in result.stdout.str()
    else:  # one usage error before anything runs, naming the option
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "no --endpoint was given" in result.stderr.str() and "test_accuracy.py" in result.stderr.str()


@pytest.mark.eval_backend
@pytest.mark.skipif(importlib.util.find_spec("evalscope") is None,
                    reason='needs evalscope: pip install "pytest-deepseek[evalscope]"')
@pytest.mark.parametrize("xdist_args", [(), ("-n2",)])
def test_evalscope_against_the_answer_key_simulator(pytester, xdist_args):
    url = ("sim://deepseek-r1?content=answer_key&content_reasoning=lone-closing-tag"
           "&content_accuracy=cluewsc-dev=0.75,math_500=0.8,mmlu=0.5")
    make_project(pytester, profile("evalscope", """\
        - {name: cluewsc-dev, min: 75.0, expected_items: 8}
        - {name: math_500, reference: 90.0, tolerance: 5.0}
        - {name: mmlu, min: 50.0}
        """), suites=("test_accuracy.py",))
    result = pytester.runpytest_subprocess(f"--endpoint={url}", "-p", "no:cacheprovider", *xdist_args)
    result.assert_outcomes(passed=2, failed=1)
    tests = {t["dataset"]: t for t in summary(pytester)["tests"]}
    assert tests["cluewsc-dev"]["metrics"]["score"] == pytest.approx(75.0)
    assert tests["math_500"]["metrics"]["score"] == pytest.approx(80.0) and tests["math_500"]["verdict"] == "fail"
    assert tests["mmlu"]["metrics"]["score"] == pytest.approx(50.0)
    # One evaluation for the three datasets, even on two workers.
    assert len(list((pytester.path / "deepseek-results").glob("*/accuracy/gate.json"))) == 1
