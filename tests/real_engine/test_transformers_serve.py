"""The shipped suites against `transformers serve`, a second real server that differs from vLLM.

It sends no `data: [DONE]`, puts usage in the last chunk with the finish_reason, rejects
`ignore_eos`/`min_tokens` with HTTP 422, serves one request at a time, answers only for the exact
model it was pinned to, and lists at /v1/models only models in its hub cache.
"""

from __future__ import annotations

import json

import pytest

from pytest_deepseek.engines.profiles import TRANSFORMERS_OUTPUT_LEN, TRANSFORMERS_PROFILE, transformers_profile
from pytest_deepseek.engines.servers import RunningServer

from .helpers import project

pytestmark = pytest.mark.real_engine


def records(pytester: pytest.Pytester) -> list[dict]:
    root = pytester.path / "deepseek-results"
    run = root / (root / "latest").read_text().strip()
    lines = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    return [line for line in lines if "type" not in line]  # not the scenarios' start and end lines


def test_endpoint_suite_says_the_server_cannot_force_output_length(
        transformers_server: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_endpoint.py",))
    result = pytester.runpytest_subprocess(f"--endpoint={transformers_server.base_url}", "-p", "no:cacheprovider",
                                           "-rf")
    # Streaming without [DONE], usage with the finish_reason, no /tokenize: all coped with.
    result.assert_outcomes(passed=7, failed=1)
    assert "server cannot force output length" in result.stdout.str()
    out = result.stdout.str()
    assert "FAILED test_endpoint.py::test_forced_output_length_is_honoured" in out
    assert "server cannot force output length" in out and "HTTP 422" in out
    assert "Traceback" not in out


def test_serving_falls_back_to_unforced_lengths_when_configured(
        transformers_server: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_serving.py",), transformers_profile(transformers_server.model, forced=False))
    result = pytester.runpytest_subprocess(f"--endpoint={transformers_server.base_url}",
                                           f"--deepseek-profile={TRANSFORMERS_PROFILE}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    recs = records(pytester)
    assert len(recs) == 2 * (1 + 6)
    assert all(r["success"] and not r["forced"] and not r["done_seen"] for r in recs)
    assert all(r["finish_reason"] == "length" and r["completion_tokens"] == TRANSFORMERS_OUTPUT_LEN for r in recs)


def test_serving_with_forced_lengths_is_an_error_naming_the_cause(
        transformers_server: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_serving.py",), transformers_profile(transformers_server.model, forced=True))
    result = pytester.runpytest_subprocess(f"--endpoint={transformers_server.base_url}",
                                           f"--deepseek-profile={TRANSFORMERS_PROFILE}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "ERROR" in out and "PASS" not in out
    assert all(r["status"] == 422 and not r["success"] for r in records(pytester))
    assert "server cannot force output length" in out


def test_model_must_be_the_pinned_one(transformers_server: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_endpoint.py",))
    result = pytester.runpytest_subprocess(f"--endpoint={transformers_server.base_url}",
                                           "--deepseek-model=deepseek-ai/DeepSeek-V3", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"available models: {transformers_server.model}" in result.stderr.str()


def test_model_pinned_by_path(transformers_server_by_path: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_endpoint.py",))
    result = pytester.runpytest_subprocess(f"--endpoint={transformers_server_by_path.base_url}",
                                           f"--deepseek-model={transformers_server_by_path.model}", "-p", "no:cacheprovider")
    assert result.ret != pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    # Its /v1/models lists nothing: the session goes on with --deepseek-model, and the endpoint suite says so.
    result.assert_outcomes(passed=6, failed=2)
    out = result.stdout.str()
    assert "server cannot force output length" in out
    assert "not in /v1/models: []" in out
