"""The shipped suites against a real vLLM (CPU build) serving a tiny random DeepSeek-V3.

The serving run uses the `vllm-cpu-ci` profile (`pytest_deepseek.engines.profiles`); its token
totals are checked against vLLM's own Prometheus counters.
"""

from __future__ import annotations

import json

import pytest

from pytest_deepseek.engines.profiles import VLLM_OUTPUT_LEN, VLLM_PROFILE, VLLM_SCENARIOS, vllm_profile
from pytest_deepseek.engines.servers import RunningServer
from pytest_deepseek.serving.endpoint_api import prometheus_counters

from .helpers import on_client_cpus, project

pytestmark = pytest.mark.real_engine


def latest(pytester: pytest.Pytester, name: str) -> str:
    root = pytester.path / "deepseek-results"
    return (root / (root / "latest").read_text().strip() / name).read_text()


def test_endpoint_suite_passes(vllm_server: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_endpoint.py",))
    result = pytester.runpytest_subprocess(f"--endpoint={vllm_server.base_url}", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=8)
    assert "SIMULATED" not in result.stdout.str()


def test_serving_suite_and_metrics_cross_check(vllm_server: RunningServer, pytester: pytest.Pytester) -> None:
    project(pytester, ("test_serving.py",), vllm_profile(vllm_server.model))
    before = prometheus_counters(vllm_server.base_url)
    with on_client_cpus():
        result = pytester.runpytest_subprocess(f"--endpoint={vllm_server.base_url}", f"--deepseek-profile={VLLM_PROFILE}",
                                               "-p", "no:cacheprovider")
    after = prometheus_counters(vllm_server.base_url)

    lines = [json.loads(line) for line in latest(pytester, "records.jsonl").splitlines()]
    records = [line for line in lines if "type" not in line]  # not the scenarios' start and end lines
    # Every request of the run, warmup included, and nothing else reached the server meanwhile.
    prompt = sum(r["prompt_tokens"] or 0 for r in records)
    completion = sum(r["completion_tokens"] or 0 for r in records)
    served_prompt = after["vllm:prompt_tokens_total"] - before["vllm:prompt_tokens_total"]
    served_completion = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    print(f"/metrics cross-check over {len(records)} requests: client {prompt} prompt / {completion} completion "
          f"tokens, vLLM {served_prompt:.0f} / {served_completion:.0f}")
    assert (prompt, completion) == (served_prompt, served_completion)
    assert all(r["success"] and r["completion_tokens"] == VLLM_OUTPUT_LEN for r in records)

    summary = json.loads(latest(pytester, "summary.json"))
    figures = {f"{t['scenario']['api']} c={t['scenario']['concurrency']}": round(t["metrics"]["output_throughput"])
               for t in summary["tests"]}
    print("vLLM output tok/s:", figures)
    assert summary["run"]["simulated"] is False
    client_bound = [i for i, t in enumerate(summary["tests"]) if only_client_bound(t)]
    if client_bound:
        print("client-bound (the load generator's one CPU, not the server, limited the run):",
              [list(figures)[i] for i in client_bound])
    assert all(t["verdict"] == "pass" or i in client_bound for i, t in enumerate(summary["tests"])), \
        result.stdout.str()
    result.assert_outcomes(passed=2 * len(VLLM_SCENARIOS) - len(client_bound), failed=len(client_bound))


def only_client_bound(test: dict) -> bool:
    """An ERROR at the highest concurrency whose only reason is the client's own health.

    At 32 streams this load generator reads ~1,500 chunks/s on the one CPU left to it, at the edge
    of the contract's 10 ms event-loop-lag p99; any other process on that CPU tips it over. That
    verdict is then correct (the figures would include client delay) and says nothing of the server.
    """
    codes = [v["code"] for v in test["contract"]]
    return (test["scenario"]["concurrency"] == max(c for c, *_ in VLLM_SCENARIOS) and test["verdict"] == "error"
            and bool(codes) and all(code.startswith("client_") for code in codes)
            and all(check["verdict"] != "fail" for check in test["checks"]))


@pytest.mark.eval_backend
def test_accuracy_pipeline_through_evalscope(vllm_server: RunningServer, pytester: pytest.Pytester) -> None:
    """evalscope grades the real server on the bundled mmlu set: a random model scores near zero, so the
    gate asserts the pipeline ran (every item scored, none errored) and the record is well formed."""
    pytest.importorskip("evalscope", reason='needs evalscope: pip install "pytest-deepseek[evalscope]"')
    project(pytester, ("test_accuracy.py",), (
        "version: 1\n"
        "profiles:\n"
        "  vllm-accuracy:\n"
        f"    model: {vllm_server.model}\n"
        "    accuracy:\n"
        "      backend: evalscope\n"
        "      generation: {temperature: 0, max_tokens: 16}\n"
        "      datasets:\n"
        "        - {name: mmlu, min: 0, expected_items: 8}\n"
    ))
    result = pytester.runpytest_subprocess(f"--endpoint={vllm_server.base_url}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    entry = json.loads(latest(pytester, "summary.json"))["tests"][0]
    metrics = entry["metrics"]
    assert entry["kind"] == "accuracy" and entry["verdict"] == "pass" and entry["simulated"] is False
    assert metrics["n"] == 8 and metrics["errored"] == 0 and not metrics["incomplete"]
    assert 0.0 <= metrics["score"] <= 100.0
    print(f"evalscope on vLLM (random tiny DeepSeek-V3): mmlu {metrics['score']:.2f} on {metrics['n']} items")
