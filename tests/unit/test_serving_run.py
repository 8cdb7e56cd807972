"""The serving gate's `run(case, context)` against the simulated engine, and the cases it cannot measure."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_deepseek.context import GateContext, SessionDeadline
from pytest_deepseek.endpoint import EndpointInfo
from pytest_deepseek.report.store import RunFolder
from pytest_deepseek.serving.gate import ServingCase, cases, on_disk, run
from pytest_deepseek.serving.measure import ServingTarget
from pytest_deepseek.serving.records import Deadlines, RequestRecord
from pytest_deepseek.settings import Settings
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.thresholds import parse_thresholds
from pytest_deepseek.testing import LOADED_BOX
from pytest_deepseek.tokenizers import TokenizerError, embedded_tokenizer

THRESHOLDS = f"""\
version: 1
profiles:
  sim:
    nodes: 2
    devices_per_node: 4
    serving:
      defaults: {{warmup: 2, num_prompts: 24, client_health: {LOADED_BOX}}}
      scenarios:
        - input_len: 48
          output_len: 12
          concurrency: 4
          floors: {{output_throughput_per_node: 1, ttft_ms.p50: 0.001}}
          ceilings: {{ttft_ms.p50: 60000, error_rate: 0.5}}
        - {{input_len: 32, output_len: 8, concurrency: 2, floors: {{output_throughput_per_node: 1.0e+9}}}}
        - {{input_len: 32, output_len: 8, concurrency: 2, name: strict, client_health: {{max_cpu_fraction: 1.0e-6}}}}
        - {{input_len: 32, output_len: 8, concurrency: 2, dataset: jsonl, dataset_path: missing.jsonl}}
"""
SUMMARY_KEYS = {"kind", "profile", "scenario_id", "simulated", "scenario", "metrics", "checks", "contract", "errors",
                "client", "stopped_early", "batch_latency_ms", "nodes", "devices_per_node", "model",
                "prompt_set_hash", "prompt_seed", "prompt_alignment", "count_offset", "verdict", "records", "log"}
CHECK_KEYS = {"metric", "op", "threshold", "value", "low", "high", "verdict", "method", "confidence", "more_needed",
              "more_unit", "message"}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointInfo]:
    folder = tmp_path_factory.mktemp("sim")
    with start_sim("sim://fast?step_base_ms=4", log_path=folder / "sim.log") as sim:
        yield EndpointInfo(url="sim://fast", base_url=sim.base_url, model=sim.model, models=(sim.model,),
                           simulated=True, has_tokenize=True)


def all_cases() -> list[ServingCase]:
    return cases(list(parse_thresholds(THRESHOLDS).profiles.values()), Settings())


def context(tmp_path: Path, endpoint: EndpointInfo | None, tokenizer=embedded_tokenizer, **settings) -> GateContext:
    folder = RunFolder(tmp_path / "results", "run-1")
    folder.create()
    lines: list[str] = []
    return GateContext(settings=Settings(results_dir=tmp_path / "results", **settings), folder=folder,
                       endpoint=endpoint, nodeid="suites/test_serving.py::test_serving[x]", tokenizer=tokenizer,
                       progress=lines.append)


def test_a_measured_scenario_keeps_the_summary_shape(tmp_path: Path, endpoint: EndpointInfo) -> None:
    result = run(all_cases()[0], context(tmp_path, endpoint))
    assert result.verdict == "pass", result.failure_text()
    assert [c.name for c in result.checks] == ["floor.output_throughput_per_node", "floor.ttft_ms.p50",
                                               "ceiling.ttft_ms.p50", "ceiling.error_rate"]
    data = json.loads(json.dumps(result.to_json()))
    assert SUMMARY_KEYS <= set(data)
    assert data["kind"] == "serving" and data["profile"] == "sim" and data["scenario_id"] == "in48-out12-c4"
    assert data["simulated"] is True and data["nodes"] == 2 and data["devices_per_node"] == 4
    assert data["scenario"]["api"] == "completions"
    assert data["prompt_alignment"] == "aligned with the server's /tokenize"
    assert all(CHECK_KEYS <= set(check) for check in data["checks"])
    assert data["metrics"]["completed"] == 24 and data["errors"] == [] and data["contract"] == []
    assert data["client"]["client_bound"] is False and data["client"]["limits"]["max_cpu_fraction"] == 2
    assert set(result.figures) == {"output_throughput_per_node", "input_throughput_per_node", "ttft_ms.p50",
                                   "ttft_ms.p99", "tpot_ms.p50", "tpot_ms.p99", "error_rate"}
    assert result.figures["output_throughput_per_node"] == pytest.approx(data["metrics"]["output_throughput"] / 2)
    lines = [json.loads(line) for line in Path(data["records"]).read_text().splitlines()]
    assert [line["type"] for line in (lines[0], lines[-1])] == ["scenario", "scenario_end"]
    records = [line for line in lines if "type" not in line]
    assert len(lines) == 28 and len(records) == 26 and sum(r["warmup"] for r in records) == 2
    assert {r["prompt_tokens"] for r in records} == {48} and {r["scenario"] for r in records} == {"in48-out12-c4"}
    log = Path(data["log"]).read_text()
    assert "Output Throughput: " in log and "Verdict: PASS" in log


def test_a_failing_floor_says_expected_measured_and_where(tmp_path: Path, endpoint: EndpointInfo) -> None:
    result = run(all_cases()[1], context(tmp_path, endpoint))
    assert result.verdict == "fail"
    text = result.failure_text()
    assert "[fail] floor.output_throughput_per_node: output_throughput_per_node >= 1000000000.00: measured" in text
    assert "records: " in text and "records.jsonl" in text and "log: " in text


def test_a_broken_contract_is_an_error_whatever_the_checks(tmp_path: Path, endpoint: EndpointInfo) -> None:
    result = run(all_cases()[2], context(tmp_path, endpoint))
    assert result.verdict == "error"
    [problem] = result.problems
    assert problem.startswith("client-bound: client CPU at") and "client_health.max_cpu_fraction" in problem
    assert result.to_json()["client"]["client_bound"] is True


def test_no_endpoint_is_an_error_not_a_skip(tmp_path: Path) -> None:
    result = run(all_cases()[0], context(tmp_path, None))
    assert result.verdict == "error" and result.problems[0].startswith("no endpoint: pass --endpoint=URL")
    assert result.to_json()["records"] is None and result.checks == ()


def test_a_tokenizer_that_cannot_load_is_an_error(tmp_path: Path, endpoint: EndpointInfo) -> None:
    def broken() -> None:
        raise TokenizerError("no tokenizer at /nowhere")

    result = run(all_cases()[0], context(tmp_path, endpoint, tokenizer=broken))
    assert result.verdict == "error"
    assert result.problems == ("the tokenizer could not be loaded: no tokenizer at /nowhere",)


def test_a_prompt_set_that_cannot_be_built_is_an_error(tmp_path: Path, endpoint: EndpointInfo) -> None:
    result = run(all_cases()[3], context(tmp_path, endpoint))
    assert result.verdict == "error" and result.problems[0].startswith("the workload could not be built:")
    assert "missing.jsonl" in result.problems[0]


def test_options_layer_over_the_profile(tmp_path: Path, endpoint: EndpointInfo) -> None:
    ctx = context(tmp_path, endpoint, api="chat", nodes=3, num_prompts=6)
    case = cases(list(parse_thresholds(THRESHOLDS).profiles.values()), ctx.settings)[0]
    result = run(case, ctx)
    data = result.to_json()
    assert data["scenario"]["api"] == "chat" and data["nodes"] == 3 and data["metrics"]["completed"] == 6
    assert result.verdict in ("pass", "inconclusive"), result.failure_text()


def test_a_session_deadline_cut_is_an_error_and_rebuilds_alike(tmp_path: Path, endpoint: EndpointInfo) -> None:
    ctx = context(tmp_path, endpoint)
    ctx = dataclasses.replace(ctx, session_deadline=SessionDeadline(limit_s=1.0, started_at=time.time() - 5))
    result = run(all_cases()[0], ctx)
    assert result.verdict == "error"
    problem = next(p for p in result.problems if p.startswith("session deadline"))
    assert re.fullmatch(r"session deadline of 1 s reached after [0-9.]+ s: 0 of 24 requests measured; records: "
                        r".*records\.jsonl", problem), problem
    [rebuilt] = on_disk(ctx.folder.path).results
    assert rebuilt.result == result


def test_lines_written_before_deadlines_and_retry_after_still_load() -> None:
    old = {"base_url": "http://h/v1", "model": "m", "api": "chat", "simulated": False, "has_tokenize": False,
           "nodes": 2, "devices_per_node": 8, "timeout_s": 600.0}
    target = ServingTarget.from_json(old)
    assert target.deadlines == Deadlines(total_s=600.0) and target.nodes == 2
    assert ServingTarget.from_json(target.to_json()) == target
    line = RequestRecord(index=1, request_id="r", api="chat").to_json_dict()
    del line["retry_after_s"]
    assert RequestRecord.from_json_dict(line).retry_after_s is None


@pytest.mark.usefixtures("full_disk")
def test_a_spill_that_fails_is_a_warning_in_the_result_the_log_and_a_rebuild(
        tmp_path: Path, endpoint: EndpointInfo) -> None:
    """A full disk under the held records leaves the figures alone (every record kept in memory) and
    is said: a warning on the result, in the scenario log, and the same after a rebuild from records."""
    ctx = context(tmp_path, endpoint)
    result = run(all_cases()[0], ctx)
    assert result.verdict in ("pass", "inconclusive"), result.failure_text()
    assert result.metrics["completed"] == 24
    [warning] = result.warnings
    assert "spill file" in warning and "No space left on device" in warning and "kept in memory" in warning
    assert f"warning: {warning}" in Path(str(result.locations["log"])).read_text()
    [rebuilt] = on_disk(ctx.folder.path).results
    assert rebuilt.result == result
