"""A run says what it was measured with: summary.json's `run.fingerprint` and each result's
fingerprint carry what the server said about itself; the run's also the client's host name and
dependency versions, and the run header the command line without the key. JUnit carries a few fields."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET

import pytest

from pytest_deepseek import __version__
from pytest_deepseek.fingerprint import DEPENDENCIES
from pytest_deepseek.sim.http import SERVER_NAME
from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, summary

SENTINEL = "sk-canary-Fg7Wd2Kp9XqT4zLm"
SIM = "sim://fast?step_base_ms=8"
THRESHOLDS = """\
version: 1
profiles:
  fp:
    engine: vllm
    hardware: H800
    serving:
      defaults: {dataset: random, warmup: 1, num_prompts: 8, client_health: %s}
      scenarios:
        - input_len: 32
          output_len: 8
          concurrency: 2
          ceilings: {error_rate: 0.5}
""" % LOADED_BOX


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    for name in ("DEEPSEEK_API_KEY", "DEEPSEEK_API_KEY_FILE", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    make_project(pytester, THRESHOLDS)
    result = pytester.runpytest_subprocess(f"--endpoint={SIM}", "--deepseek-api-key", SENTINEL, "--junitxml=junit.xml",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    return result


def test_the_run_header_names_server_client_and_command_line(pytester: pytest.Pytester,
                                                                         run: pytest.RunResult) -> None:
    header = summary(pytester)["run"]["fingerprint"]
    assert header["server_version"] == __version__  # the simulator's `/version`
    assert header["server_headers"] == {"server": SERVER_NAME}
    assert header["model_root"] and header["max_model_len"] and header["model_owned_by"] == "pytest-deepseek"
    assert header["endpoint_url"] == SIM and header["simulated"] is True
    assert header["hostname"] == socket.gethostname()
    assert set(header["dependencies"]) == set(DEPENDENCIES) and header["dependencies"]["pytest"] == pytest.__version__
    line = summary(pytester)["run"]["command_line"]  # beside the fingerprint: its paths differ from run to run
    assert f"--endpoint={SIM}" in line and "--junitxml=junit.xml" in line
    assert line[line.index("--deepseek-api-key") + 1] == "***"


def test_each_result_carries_the_server_facts_and_junit_a_few(pytester: pytest.Pytester,
                                                             run: pytest.RunResult) -> None:
    test = summary(pytester)["tests"][0]
    fingerprint = test["fingerprint"]
    assert fingerprint["server_version"] == __version__ and fingerprint["server_headers"] == {"server": SERVER_NAME}
    assert fingerprint["model_root"] == fingerprint["endpoint_model"]
    assert fingerprint["engine"] == "vllm" and fingerprint["prompt_set_hash"]
    assert "hostname" not in fingerprint and "dependencies" not in fingerprint  # the run's, not each test's
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert props["deepseek.fingerprint.server_version"] == __version__
    assert props["deepseek.fingerprint.model_root"] == fingerprint["model_root"]
    assert props["deepseek.fingerprint.engine"] == "vllm" and props["deepseek.fingerprint.hardware"] == "H800"
    assert props["deepseek.fingerprint.prompt_set_hash"] == fingerprint["prompt_set_hash"]


def test_no_output_holds_the_key(pytester: pytest.Pytester, run: pytest.RunResult) -> None:
    text = json.dumps(summary(pytester))
    assert SENTINEL not in text and SENTINEL[10:] not in text
    for path in [*latest_run(pytester).rglob("*"), pytester.path / "junit.xml"]:
        if path.is_file():
            assert SENTINEL[10:].encode() not in path.read_bytes(), path
    assert SENTINEL[10:] not in run.stdout.str() + run.stderr.str()
