"""Holes a release gate cannot have: green on nothing, breaking projects that merely have the plugin
installed, colliding JUnit properties, a mislabelled tokenizer, a POSIX-only import."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_deepseek.testing import LOADED_BOX

from .helpers import make_project, summary

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_deepseek"

SERVING_AND_TRAINING = """\
version: 1
profiles:
  sim-fast:
    endpoint: sim://fast?step_base_ms=8
    serving:
      defaults: {dataset: random, warmup: 0, num_prompts: 12, client_health: %(client_health)s}
      scenarios:
        - {input_len: 32, output_len: 8, concurrency: 2, floors: {output_throughput: 1}, ceilings: {error_rate: 0.5}}
    training:
      - name: toy
        log: toy.jsonl
        dialect: jsonl
        converge: {metric: loss, below: 1.0, within: 5, statistic: raw}
""".replace("%(client_health)s", LOADED_BOX)

TOY_LOG = "\n".join(f'{{"step": {i}, "loss": {2.0 / i}}}' for i in range(1, 7))


def _project(pytester: pytest.Pytester) -> None:
    make_project(pytester, SERVING_AND_TRAINING, suites=("test_serving.py", "test_training.py", "test_endpoint.py"))
    (pytester.path / "toy.jsonl").write_text(TOY_LOG)


def test_a_profile_without_its_endpoint_is_a_usage_error_not_green(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("--deepseek-profile=sim-fast", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "no --endpoint was given" in err and "--endpoint=URL" in err


def test_deselecting_the_serving_tests_runs_the_rest(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("--deepseek-profile=sim-fast", "-m", "deepseek_training", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=9)  # 1 serving + 8 endpoint checks


def test_under_xdist_a_missing_endpoint_is_an_error_per_test(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("--deepseek-profile=sim-fast", "-n", "2", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1  # the training test
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 9 and "skipped" not in outcomes
    assert "no endpoint" in result.stdout.str()


def test_another_projects_thresholds_yaml_is_left_alone(pytester: pytest.Pytester) -> None:
    (pytester.path / "thresholds.yaml").write_text("cpu: 90\nmemory: 75\n")
    pytester.makepyfile(test_theirs="def test_theirs():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "deepseek: " not in result.stdout.str() and "gate summary" not in result.stdout.str()


def test_a_gate_option_still_validates_the_file_up_front(pytester: pytest.Pytester) -> None:
    (pytester.path / "thresholds.yaml").write_text("cpu: 90\n")
    pytester.makepyfile(test_theirs="def test_theirs():\n    assert True\n")
    result = pytester.runpytest_subprocess("--deepseek-profile=x", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "thresholds.yaml:1: cpu: unknown key" in result.stderr.str()


def test_junit_properties_are_unique_and_carry_latencies(pytester: pytest.Pytester) -> None:
    thresholds = SERVING_AND_TRAINING.replace(
        "converge: {metric: loss, below: 1.0, within: 5, statistic: raw}",
        "converge: {metric: loss, below: 1.0, within: 5, statistic: raw}\n"
        "        diverge: {metric: loss, ratio: 3.0}\n"
        "        plateau: {metric: loss, below: 0.01, patience: 100, window: 2}")
    make_project(pytester, thresholds, suites=("test_serving.py", "test_training.py"))
    (pytester.path / "toy.jsonl").write_text(TOY_LOG)
    pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "--junitxml=junit.xml", "-p",
                                  "no:cacheprovider")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = root.iter("testcase")
    names_by_case = {case.get("name"): [p.get("name") for p in case.iter("property")] for case in cases}
    assert len(names_by_case) == 2
    for case, names in names_by_case.items():
        assert len(names) == len(set(names)), f"{case}: {names}"
    serving = next(names for case, names in names_by_case.items() if "in32" in str(case))
    assert {"deepseek.ttft_ms.p99", "deepseek.tpot_ms.p99", "deepseek.ttft_ms.p50"} <= set(serving)
    training = next(names for case, names in names_by_case.items() if "toy" in str(case))
    assert sum(1 for name in training if name.startswith("deepseek.check.")) >= 3


def test_header_and_summary_name_the_profiles_tokenizer(pytester: pytest.Pytester, tmp_path: Path) -> None:
    from pytest_deepseek.tokenizers import embedded_tokenizer_dir

    folder = embedded_tokenizer_dir()
    thresholds = SERVING_AND_TRAINING.replace("    endpoint: sim://", f"    tokenizer: {folder}\n    endpoint: sim://")
    make_project(pytester, thresholds)
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert f"tokenizer {folder};" in result.stdout.str()
    assert summary(pytester)["run"]["tokenizer"] == str(folder)


def test_the_package_has_no_posix_only_lock() -> None:
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if re.search(r"^\s*(import fcntl|from fcntl)", path.read_text(encoding="utf-8"), re.M)]
    assert offenders == []


def test_summary_entries_rebuild_into_results(pytester: pytest.Pytester) -> None:
    from pytest_deepseek.verdict import GateResult

    _project(pytester)
    pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
    for entry in summary(pytester)["tests"]:
        assert json.loads(json.dumps(GateResult.from_json(entry).to_json())) == entry


TRAINING_ONLY_AND_SERVING = SERVING_AND_TRAINING + """\
  training-only:
    training:
      - name: toy
        log: toy.jsonl
        dialect: jsonl
        converge: {metric: loss, below: 1.0, within: 5, statistic: raw}
"""


@pytest.mark.parametrize("xdist_args", [(), ("-n", "2")])
def test_a_training_only_profile_runs_its_tests_and_nothing_else(pytester: pytest.Pytester,
                                                                 xdist_args: tuple[str, ...]) -> None:
    make_project(pytester, TRAINING_ONLY_AND_SERVING,
                 suites=("test_serving.py", "test_training.py", "test_endpoint.py", "test_accuracy.py"))
    (pytester.path / "toy.jsonl").write_text(TOY_LOG)
    result = pytester.runpytest_subprocess("--deepseek-profile=training-only", *xdist_args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and "skipped" not in outcomes and "error" not in outcomes
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_endpoint_checks_alone_need_no_profile_choice(pytester: pytest.Pytester) -> None:
    make_project(pytester, TRAINING_ONLY_AND_SERVING, suites=("test_endpoint.py",))
    result = pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_listing_tests_needs_no_endpoint_and_starts_no_server(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("--deepseek-profile=sim-fast", "--collect-only", "-q", "-p",
                                           "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert "10 tests collected" in result.stdout.str()


def test_results_carry_a_fingerprint(pytester: pytest.Pytester) -> None:
    _project(pytester)
    pytester.runpytest_subprocess("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
    tests = summary(pytester)["tests"]
    serving = next(t for t in tests if t["kind"] == "serving")
    training = next(t for t in tests if t["kind"] == "training")
    for entry in (serving, training):
        fingerprint = entry["fingerprint"]
        assert fingerprint["profile"] == "sim-fast" and fingerprint["plugin_version"]
        assert len(fingerprint["thresholds_sha256"]) == 64 and fingerprint["endpoint_url"].startswith("sim://fast")
    assert serving["fingerprint"]["prompt_set_hash"] == serving["prompt_set_hash"]
    assert training["fingerprint"]["logs"] == training["paths"]
