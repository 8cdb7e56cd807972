"""A hardware matrix in one run: `--endpoint PROFILE=URL` per profile, each profile measured against its
own endpoint (here two simulators of different speed), the results side by side at the end.

Real simulators on 127.0.0.1, a few short requests per scenario; figures are compared with wide margins.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.settings import EndpointArgs, SettingsError, split_endpoint
from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, records, summary

FAST = "sim://fast?step_base_ms=5"
SLOW = "sim://fast?step_base_ms=20"
SCENARIO = ("{input_len: 32, output_len: 16, concurrency: 2, num_prompts: %(prompts)d, "
            "floors: {output_throughput_per_node: 1}}")
THRESHOLDS = f"""\
version: 1
profiles:
  h-fast:
    nodes: 1
    serving:
      defaults: {{dataset: random, warmup: 1, client_health: {LOADED_BOX}}}
      scenarios:
        - {SCENARIO}
  h-slow:
    nodes: 1
    %(slow_key)s
    serving:
      defaults: {{dataset: random, warmup: 1, client_health: {LOADED_BOX}}}
      scenarios:
        - {SCENARIO}
"""
MATRIX = (f"--endpoint=h-fast={FAST}", f"--endpoint=h-slow={SLOW}")
QUIET = ("-p", "no:cacheprovider")


def _project(pytester: Any, *, prompts: int = 12, slow_key: str = "", suites: tuple[str, ...] = ("test_serving.py",)
             ) -> None:
    make_project(pytester, THRESHOLDS % {"prompts": prompts, "slow_key": slow_key}, suites)


def _serving(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["profile"]: t for t in data["tests"] if t["kind"] == "serving"}


def _truth_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _outcome(run: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """(test id, verdict) of every result in summary.json, and (profile, scenario, verdict) of every CSV row."""
    data = json.loads((run / "summary.json").read_text())
    tests = {(t["nodeid"], t["verdict"]) for t in data["tests"]}
    rows = {(r["profile"], r["scenario"], r["verdict"]) for r in csv.DictReader((run / "test_result.csv").open())}
    return tests, rows


def test_each_profile_is_measured_on_its_own_endpoint(pytester: Any) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess(*MATRIX, *QUIET)
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert f"deepseek: endpoint {FAST} -> " in out and f"deepseek: endpoint {SLOW} -> " in out
    assert "(profile h-fast)" in out and "(profile h-slow)" in out

    data = summary(pytester)
    endpoints = data["run"]["endpoints"]
    assert {name: e["url"] for name, e in endpoints.items()} == {"h-fast": FAST, "h-slow": SLOW}
    assert endpoints["h-fast"]["base_url"] != endpoints["h-slow"]["base_url"]
    assert data["run"]["endpoint"] is None and data["run"]["simulated"] is True
    tests = _serving(data)
    assert {name: t["fingerprint"]["endpoint_url"] for name, t in tests.items()} == {"h-fast": FAST, "h-slow": SLOW}
    assert all(t["verdict"] == "pass" and t["metrics"]["completed"] == 12 for t in tests.values())

    # each simulator saw exactly its own profile's requests (warmup included), none of the other's; every
    # request id of the run is its own (the profiles' scenarios share their ids)
    ids = [r["request_id"] for r in records(pytester)]
    assert len(ids) == 2 * (12 + 1) and len(set(ids)) == len(ids)
    run = latest_run(pytester)
    for profile in ("h-fast", "h-slow"):
        truth = run / "endpoints" / profile / "sim" / "sim-truth.jsonl"
        assert len(_truth_lines(truth)) == 12 + 1, profile

    fast = tests["h-fast"]["metrics"]["output_throughput_per_node"]
    slow = tests["h-slow"]["metrics"]["output_throughput_per_node"]
    assert slow < 0.75 * fast, (fast, slow)  # 4x slower decode steps; generous for a busy box

    assert out.index("serving (SIMULATED") < out.index("serving across hardware")  # the per-scenario table stays
    header, row = _hardware_table(out)
    assert header.split().count("h-fast") == 1 and header.split().count("h-slow") == 1
    assert header.index("h-fast") < header.index("h-slow")
    for column in ("out tok/s/node", "in tok/s/node", "TTFT p99 ms", "TPOT p99 ms", "verdict"):
        assert header.count(column) == 2, column
    cells = row.split()
    assert cells[:3] == ["32", "16", "2"] and cells.count("PASS") == 2
    assert f"{tests['h-fast']['metrics']['output_throughput_per_node']:,.2f}" in cells
    assert f"{tests['h-slow']['metrics']['output_throughput_per_node']:,.2f}" in cells


def _hardware_table(out: str) -> tuple[str, str]:
    """The cross-hardware table's header (its lines joined) and its one row."""
    lines = out[out.index("serving across hardware"):].splitlines()[1:]
    rule = next(i for i, line in enumerate(lines) if "───" in line)
    return "\n".join(lines[:rule]), lines[rule + 1]


def test_xdist_run_gives_the_same_results(pytester: Any) -> None:
    _project(pytester, prompts=8, suites=("test_serving.py", "test_endpoint.py"))
    locks = pytester.path / "deepseek-results"
    serial = pytester.runpytest_subprocess(*MATRIX, "-n", "0", "--junitxml=serial.xml", *QUIET)
    serial.assert_outcomes(passed=2 + 2 * 8)  # the endpoint checks run once per endpoint
    serial_run = latest_run(pytester)
    assert len(list(locks.glob(".perf-*.lock"))) == 2  # one perf lock per endpoint: they never wait for each other
    parallel = pytester.runpytest_subprocess(*MATRIX, "-n", "2", "--junitxml=parallel.xml", *QUIET)
    parallel.assert_outcomes(passed=2 + 2 * 8)
    parallel_run = latest_run(pytester)
    assert parallel_run != serial_run
    tests, rows = _outcome(parallel_run)
    assert (tests, rows) == _outcome(serial_run)
    assert {profile for profile, _, _ in rows} == {"h-fast", "h-slow"} and len(tests) == 2
    measured = _serving(json.loads((parallel_run / "summary.json").read_text()))
    assert {name: t["fingerprint"]["endpoint_url"] for name, t in measured.items()} == {"h-fast": FAST, "h-slow": SLOW}
    names = _test_names(pytester.path / "parallel.xml")
    assert names == _test_names(pytester.path / "serial.xml")
    assert {"test_model_is_listed[h-fast]", "test_model_is_listed[h-slow]",
            "test_serving[h-fast:in32-out16-c2]", "test_serving[h-slow:in32-out16-c2]"} <= names
    assert "serving across hardware" in parallel.stdout.str()


def _test_names(junit: Path) -> set[str]:
    return {case.get("name", "") for case in ET.parse(junit).iter("testcase")}


def test_a_profile_without_a_named_endpoint_uses_its_endpoint_key(pytester: Any) -> None:
    _project(pytester, prompts=6, slow_key=f"endpoint: {SLOW}")
    result = pytester.runpytest_subprocess(f"--endpoint=h-fast={FAST}", "--deepseek-profile=h-fast,h-slow", *QUIET)
    result.assert_outcomes(passed=2)
    endpoints = summary(pytester)["run"]["endpoints"]
    assert {name: e["url"] for name, e in endpoints.items()} == {"h-fast": FAST, "h-slow": SLOW}


@pytest.mark.parametrize("options, says", [
    ((f"--endpoint=h-mid={FAST}",), "no profile 'h-mid'"),
    ((f"--endpoint=h-fast={FAST}", f"--deepseek-warmup-endpoint=h-mid={SLOW}"), "no profile 'h-mid'"),
    ((FAST, SLOW), "match no profile's endpoint: key"),
    ((f"--endpoint=h-fast={FAST}", "--deepseek-profile=h-fast,h-slow"), "no endpoint for profile(s) h-slow"),
], ids=["unknown-profile", "warmup-for-unknown-profile", "two-loose-urls", "profile-left-without"])
def test_bad_endpoint_combinations_are_one_usage_error(pytester: Any, options: tuple[str, ...], says: str) -> None:
    _project(pytester)
    options = tuple(o if o.startswith("-") else f"--endpoint={o}" for o in options)
    result = pytester.runpytest_subprocess(*options, *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert says in err
    assert "profiles: h-fast (no endpoint:), h-slow (no endpoint:)" in err
    assert not (pytester.path / "deepseek-results").exists() or not list(
        (pytester.path / "deepseek-results").rglob("sim-truth.jsonl"))  # no simulator was started


def test_profile_is_split_off_only_before_a_url() -> None:
    assert split_endpoint(FAST) == (None, FAST)  # `=` in the query of a bare URL
    assert split_endpoint(f"h-fast={FAST}") == ("h-fast", FAST)
    assert split_endpoint("http://h:8000/v1?a=b") == (None, "http://h:8000/v1?a=b")
    with pytest.raises(SettingsError, match="no URL after h-fast="):
        split_endpoint("h-fast=")


def test_each_profile_gets_the_most_specific_url() -> None:
    known = {"a": None, "b": "http://b/v1", "c": None}
    # named, else a bare URL equal to the profile's key, else the one loose bare URL, else the key
    plan = EndpointArgs.parse(["a=http://a/v1", "http://b/v1", "http://rest/v1"]).plan(known, ["a", "b", "c"])
    assert dict(plan.by_profile) == {"a": "http://a/v1", "b": "http://b/v1", "c": "http://rest/v1"}
    assert plan.urls() == ("http://rest/v1", "http://a/v1", "http://b/v1")
    plan = EndpointArgs.parse(["a=http://a/v1"]).plan(known, ["a", "b", "c"])
    assert dict(plan.by_profile) == {"a": "http://a/v1", "b": "http://b/v1"} and plan.url_for("c") is None
    # one bare URL, as before: every selected profile (and the ad-hoc one) is measured on it
    plan = EndpointArgs.parse(["http://b/v1"]).plan(known, ["a", "b"])
    assert dict(plan.by_profile) == {"a": "http://b/v1", "b": "http://b/v1"} and plan.url_for("adhoc") == "http://b/v1"
    assert EndpointArgs.parse(["http://b/v1"]).profiles_named(known) == ["b"]
