"""The API key never leaves the process that sends it: a sentinel key is planted through each way a
user gives one (option, environment, key file), runs with failures in them are made as users make
them (-v -rA -l, JUnit XML with captured output, a failing test holding the key), against the
simulator injecting failures and against a server that echoes the key back in its 401 bodies; then
every file of the run and everything it printed is searched for the key in every form it could take.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from .fake_servers import KeyEchoServer
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, records

SENTINEL = "sk-canary-Q7vJ2xLp9TzW4mRb8NcY"
FAILING_SIM = "sim://fast?step_base_ms=8&fail_every=3&error_event_every=4&fail_midstream_every=5"
KEY_VARIABLES = ("DEEPSEEK_API_KEY", "DEEPSEEK_API_KEY_FILE", "OPENAI_API_KEY")

THRESHOLDS = """\
version: 1
profiles:
  leak:
    error_budget: 1.0  # run through every failure (a blown budget would stop the scenario at the first)
    serving:
      defaults: {dataset: random, warmup: 1, num_prompts: 12, timeout_s: 10, client_health: %s}
      scenarios:
        - input_len: 32
          output_len: 8
          concurrency: 2
          floors: {output_throughput: 1}
          ceilings: {error_rate: 0.01}
""" % LOADED_BOX

# A user's own tests: one proves the planted key is the one in force (without naming it), one fails
# with the key in its locals, its log, its output and its assertion message.
USER_TESTS = """\
import hashlib
import logging
import os

from pytest_deepseek.fixtures import run_state
from pytest_deepseek.serving.endpoint_api import list_models


def test_the_planted_key_is_in_force(deepseek_api_key):
    assert deepseek_api_key is not None
    digest = hashlib.sha256(deepseek_api_key.reveal().encode()).hexdigest()
    assert digest == os.environ["LEAK_SENTINEL_SHA256"]
    print("key in force:", deepseek_api_key, repr(deepseek_api_key))


def test_fails_holding_the_key(pytestconfig, deepseek_endpoint, deepseek_api_key):
    key = deepseek_api_key
    settings = run_state(pytestconfig).settings
    logging.getLogger("user").warning("key %s %r; settings %r", key, key, settings)
    print("settings:", settings, "key:", key)
    models = list_models(deepseek_endpoint.base_url, key, tls=deepseek_endpoint.tls)
    assert not models, f"listed {models} with key {key} / {key!r} / {settings!r}"
"""


def leak_forms(secret: str) -> dict[str, bytes]:
    """The forms a leaked key could take in a file or an output, by name."""
    body = secret[len("sk-canary-"):]
    forms = {
        "raw": secret, "repr": repr(secret)[1:-1], "json": json.dumps(secret)[1:-1], "hex": secret.encode().hex(),
        "first half": body[: len(body) // 2], "second half": body[len(body) // 2:],
    }
    for label, text in (("key", secret), ("bearer", f"Bearer {secret}")):
        forms[f"base64 {label}"] = base64.b64encode(text.encode()).decode().rstrip("=")
        forms[f"urlsafe base64 {label}"] = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    return {name: form.encode() for name, form in forms.items()}


def leaks_in(blobs: dict[str, bytes]) -> list[str]:
    """`where: form` for every form of the sentinel found in `blobs`."""
    forms = leak_forms(SENTINEL)
    return [f"{where}: {name}" for where, data in blobs.items() for name, form in forms.items() if form in data]


def outputs_of(pytester: pytest.Pytester, result: pytest.RunResult, *, measured: bool = True) -> dict[str, bytes]:
    """Every file the run could write (the pytester folder: results, JUnit XML, simulator logs, the
    run's basetemp; and its temporary root) and everything it printed."""
    folders = [pytester.path, Path(os.environ["PYTEST_DEBUG_TEMPROOT"])]
    blobs = {str(p): p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file()}
    if measured:  # the search covers the files that matter
        assert any(name.endswith("records.jsonl") for name in blobs) and any(n.endswith("junit.xml") for n in blobs)
    blobs["<stdout>"] = "\n".join(result.outlines).encode()
    blobs["<stderr>"] = "\n".join(result.errlines).encode()
    return blobs


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEAK_SENTINEL_SHA256", hashlib.sha256(SENTINEL.encode()).hexdigest())
    make_project(pytester, THRESHOLDS, suites=("test_serving.py", "test_endpoint.py"))
    pytester.makepyfile(test_user=USER_TESTS)
    return pytester


def plant(source: str, monkeypatch: pytest.MonkeyPatch, key_dir: Path) -> list[str]:
    """Plant the sentinel the way `source` says; returns the command-line arguments it needs."""
    key_file = key_dir / "deepseek.key"
    key_file.write_text(f"\n  {SENTINEL}\n")
    if source == "option":
        return [f"--deepseek-api-key={SENTINEL}"]
    if source == "file option":
        return [f"--deepseek-api-key-file={key_file}"]
    if source == "environment":
        monkeypatch.setenv("DEEPSEEK_API_KEY", SENTINEL)
    elif source == "file environment":
        monkeypatch.setenv("DEEPSEEK_API_KEY_FILE", str(key_file))
    elif source == "openai environment":
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    else:
        raise AssertionError(source)
    return []


RUN_ARGS = ("-v", "-rA", "-l", "--tb=long", "--junitxml=junit.xml", "-o", "junit_logging=all",
            "-p", "no:cacheprovider", "--deepseek-profile=leak")


@pytest.mark.parametrize("source", ["option", "environment", "file option", "file environment"])
def test_no_leak_with_the_simulator_failing_requests(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path_factory: pytest.TempPathFactory, source: str) -> None:
    args = plant(source, monkeypatch, tmp_path_factory.mktemp("key"))
    result = project.runpytest_subprocess(f"--endpoint={FAILING_SIM}", *RUN_ARGS, *args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 2, result.stdout.str()  # the user's failing test and the serving gate
    result.stdout.fnmatch_lines(["*test_the_planted_key_is_in_force PASSED*"])
    details = [r["error_detail"] for r in records(project) if r["error_detail"]]
    assert any("HTTP 500" in d for d in details) and len(details) >= 3  # failures were recorded
    assert (latest_run(project) / "sim" / "sim.log").exists()
    assert leaks_in(outputs_of(project, result)) == []


@pytest.mark.parametrize("source", ["option", "file environment", "openai environment"])
def test_no_leak_from_a_server_echoing_the_key(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path_factory: pytest.TempPathFactory, source: str) -> None:
    args = plant(source, monkeypatch, tmp_path_factory.mktemp("key"))
    with KeyEchoServer(list_models=True) as server:
        result = project.runpytest_subprocess(f"--endpoint={server.base_url}", *RUN_ARGS, *args)
    assert f"Bearer {SENTINEL}" in server.seen  # the key went out, and came back in every error body
    result.stdout.fnmatch_lines(["*test_the_planted_key_is_in_force PASSED*", "*test_fails_holding_the_key FAILED*"])
    assert "HTTP 401" in result.stdout.str() and "Bearer ***" in result.stdout.str()  # echoed, then redacted
    details = [r["error_detail"] for r in records(project) if r["error_detail"]]
    assert any(d.startswith("HTTP 401") for d in details) and any("revoked" in d for d in details)
    assert leaks_in(outputs_of(project, result)) == []


@pytest.mark.parametrize("source", ["environment", "file option"])
def test_no_leak_when_the_endpoint_rejects_the_key_at_start(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path_factory: pytest.TempPathFactory,
                                                            source: str) -> None:
    args = plant(source, monkeypatch, tmp_path_factory.mktemp("key"))
    with KeyEchoServer(list_models=False) as server:
        result = project.runpytest_subprocess(f"--endpoint={server.base_url}", *RUN_ARGS, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"Bearer {SENTINEL}" in server.seen
    assert "HTTP 401" in result.stderr.str() and "Incorrect API key provided: Bearer ***" in result.stderr.str()
    assert leaks_in(outputs_of(project, result, measured=False)) == []


def test_no_leak_of_credentials_in_the_endpoint_url(project: pytest.Pytester) -> None:
    """A password in the endpoint URL (`http://user:pass@host/v1`) reaches the server when the
    endpoint is probed (httpx sends it as basic auth) and is written nowhere: not in the run header,
    the fingerprints, the JUnit XML, the records or the output. The measuring transport (aiohttp)
    refuses such a URL, so the serving requests fail as client errors; the shipped suites alone run
    (the user's tests print `Settings`, whose repr names --endpoint as given)."""
    sim = start_sim("sim://fast")
    try:
        url = str(sim.base_url).replace("http://", f"http://user:{SENTINEL}@", 1)
        result = project.runpytest_subprocess("test_serving.py", "test_endpoint.py", f"--endpoint={url}", *RUN_ARGS)
    finally:
        sim.stop()
    result.stdout.fnmatch_lines(["*test_model_is_listed PASSED*"])  # the server was reached with that URL
    shown = str(sim.base_url).replace("http://", "http://***@", 1)
    run = json.loads((latest_run(project) / "summary.json").read_text())["run"]
    assert (run["endpoint"], run["endpoint_url"], run["fingerprint"]["endpoint_url"]) == (shown, shown, shown)
    assert leaks_in(outputs_of(project, result)) == []


def test_the_search_finds_a_planted_leak(tmp_path: Path) -> None:
    """The search itself is sound: each form, and a key cut in half, is found."""
    (tmp_path / "a.log").write_text(f"Authorization: {base64.b64encode(f'Bearer {SENTINEL}'.encode()).decode()}")
    blobs = {"a.log": (tmp_path / "a.log").read_bytes(), "b": SENTINEL[:-6].encode(), "c": SENTINEL[-12:].encode()}
    found = leaks_in(blobs)
    assert "a.log: base64 bearer" in found and "b: first half" in found and "c: second half" in found
