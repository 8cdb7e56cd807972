"""Exports of a run folder (`report/exports.py`): the vLLM result files, the pytest-benchmark
document read by `pytest-benchmark compare`, and test_result.csv holding every scenario of every
profile. The run folders are made by really running the serving gate against the simulator."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deepseek.report import benchmark_json, vllm_json
from pytest_deepseek.report.exports import BENCHMARK_FILE, EXPORTS_DIR, VLLM_DIR, write_exports
from pytest_deepseek.testing import LOADED_BOX

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "exports"
ENDPOINT = "sim://fast?step_base_ms=8"
THRESHOLDS = f"""\
version: 1
profiles:
  sim-a:
    endpoint: {ENDPOINT}
    nodes: 2
    devices_per_node: 4
    serving:
      defaults: {{dataset: random, warmup: 2, num_prompts: 16, client_health: {LOADED_BOX}}}
      scenarios:
        - input_len: 64
          output_len: 16
          concurrency: 4
          slo: {{ttft_ms: 5000}}
          floors: {{output_throughput_per_node: 5}}
        - input_len: 32
          output_len: 8
          request_rate: 40
  sim-b:
    endpoint: {ENDPOINT}
    api: chat
    serving:
      defaults: {{dataset: random, warmup: 0, num_prompts: 12, client_health: {LOADED_BOX}}}
      scenarios:
        - input_len: 32
          output_len: 8
          concurrency: 2
"""
SCENARIOS = {("sim-a", "in64-out16-c4"), ("sim-a", "in32-out8-r40"), ("sim-b", "in32-out8-c2")}
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "null": type(None)}


def _run_gate(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_ADDOPTS", "PYTEST_XDIST"))}
    done = subprocess.run([sys.executable, "-m", "pytest", f"--endpoint={ENDPOINT}", "-p", "no:cacheprovider"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two run folders of the same project (two runs of the gate, three scenarios in two profiles)."""
    project = tmp_path_factory.mktemp("project")  # as tests/plugin/helpers.py: make_project lays it out
    (project / "test_serving.py").write_text((REPO / "suites" / "test_serving.py").read_text())
    (project / "thresholds.yaml").write_text(THRESHOLDS)
    (project / "pytest.ini").write_text("[pytest]\n")
    _run_gate(project)
    _run_gate(project)
    folders = sorted(p for p in (project / "deepseek-results").iterdir() if p.is_dir())
    assert len(folders) == 2
    return folders


@pytest.fixture
def run(runs: list[Path], tmp_path: Path) -> Path:
    """A copy of the first run folder, this test's own."""
    return Path(shutil.copytree(runs[0], tmp_path / runs[0].name))


def _summary_entries(run_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    tests = json.loads((run_dir / "summary.json").read_text())["tests"]
    return {(t["profile"], t["scenario_id"]): t for t in tests if t["kind"] == "serving"}


def _matches(value: Any, kind: str) -> bool:
    if kind.startswith("array["):
        inner = kind[len("array["):-1]
        return isinstance(value, list) and all(_matches(v, inner) for v in value)
    return isinstance(value, JSON_TYPES[kind]) and not (kind == "number" and isinstance(value, bool))


def test_the_key_set_is_the_one_a_real_vllm_writes() -> None:
    """A file `vllm bench serve --save-result --save-detailed` (vLLM 0.32.0) wrote: its keys are the
    reference's, and each value has a type the reference allows (our files are checked against it)."""
    reference = json.loads((DATA / "vllm_bench_serve_keys.json").read_text())["keys"]
    real = json.loads((DATA / "vllm_bench_serve_0.32.0.json").read_text())
    assert set(real) == set(reference)
    wrong = {k: real[k] for k, kinds in reference.items() if not any(_matches(real[k], t) for t in kinds)}
    assert not wrong, wrong


def test_each_scenario_is_a_vllm_result_file_with_vllms_keys_and_types(run: Path) -> None:
    reference = json.loads((DATA / "vllm_bench_serve_keys.json").read_text())["keys"]
    written = write_exports(run)
    vllm_dir = run / EXPORTS_DIR / VLLM_DIR
    assert sorted(written) == sorted([run / EXPORTS_DIR / BENCHMARK_FILE, *vllm_dir.glob("*.json")])
    assert {p.name for p in vllm_dir.glob("*.json")} == {f"{p}_{s}.json" for p, s in SCENARIOS}
    for path in vllm_dir.glob("*.json"):
        document = json.loads(path.read_text())
        assert set(document) == set(reference) | set(vllm_json.METADATA_KEYS), path.name
        assert set(vllm_json.latency_keys()) | set(vllm_json.DETAILED_KEYS) <= set(reference)
        assert {len(document[key]) for key in vllm_json.DETAILED_KEYS} == {document["num_prompts"]}
        wrong = {k: document[k] for k, kinds in reference.items() if not any(_matches(document[k], t) for t in kinds)}
        assert not wrong, f"{path.name}: values of the wrong JSON type: {wrong}"
        assert document["simulated"] == "true" and document["verdict"] == "pass"


def test_vllm_keys_hold_the_runs_decided_figures(run: Path) -> None:
    write_exports(run)
    entries = _summary_entries(run)
    assert set(entries) == SCENARIOS
    for (profile, scenario), entry in entries.items():
        doc = json.loads((run / EXPORTS_DIR / VLLM_DIR / f"{profile}_{scenario}.json").read_text())
        metrics = entry["metrics"]
        assert (doc["profile"], doc["scenario"], doc["num_prompts"]) == (profile, scenario, entry["scenario"]["num_prompts"])
        assert doc["completed"] == metrics["completed"] == len(doc["output_lens"]) and doc["failed"] == 0
        assert doc["output_throughput"] == pytest.approx(metrics["output_throughput_run_window"], rel=1e-12)
        # vLLM's throughputs are over the whole run: its duration, its totals.
        assert doc["total_output_tokens"] == sum(doc["output_lens"])
        assert doc["total_output_tokens"] == pytest.approx(doc["output_throughput"] * doc["duration"], rel=1e-9)
        assert doc["request_throughput"] == pytest.approx(doc["completed"] / doc["duration"], rel=1e-12)
        assert doc["total_token_throughput"] == pytest.approx(
            (doc["total_input_tokens"] + doc["total_output_tokens"]) / doc["duration"], rel=1e-12)
        assert doc["total_input_tokens"] == sum(doc["input_lens"]) == doc["completed"] * entry["scenario"]["input_len"]
        for vllm_name, ours in vllm_json.LATENCIES.items():
            for stat in ("mean", "p50", "p90", "p95", "p99"):
                assert doc[f"{stat}_{vllm_name}_ms"] == pytest.approx(metrics[ours][stat], rel=1e-12)
            assert doc[f"median_{vllm_name}_ms"] == doc[f"p50_{vllm_name}_ms"]
        # The per-request lists (seconds) are the same requests the figures (ms) summarise.
        assert 1e3 * sum(doc["ttfts"]) / len(doc["ttfts"]) == pytest.approx(doc["mean_ttft_ms"], rel=1e-9)
        assert 1e3 * sum(doc["latencies"]) / len(doc["latencies"]) == pytest.approx(doc["mean_e2el_ms"], rel=1e-9)
        gaps = [g for request in doc["itls"] for g in request]
        assert 1e3 * sum(gaps) / len(gaps) == pytest.approx(doc["mean_itl_ms"], rel=1e-9)
        assert all(t > 0 for t in doc["start_times"]) and doc["errors"] == [""] * doc["completed"]
        assert 0 < doc["max_output_tokens_per_s"] <= doc["total_output_tokens"]
        cap = entry["scenario"]["concurrency"]
        assert 1 <= doc["max_concurrent_requests"] <= (cap or doc["completed"])


def test_vllm_load_shape_api_and_goodput_follow_the_scenario(run: Path) -> None:
    write_exports(run)

    def doc(profile: str, scenario: str) -> dict[str, Any]:
        return json.loads((run / EXPORTS_DIR / VLLM_DIR / f"{profile}_{scenario}.json").read_text())

    closed, opened, chat = doc("sim-a", "in64-out16-c4"), doc("sim-a", "in32-out8-r40"), doc("sim-b", "in32-out8-c2")
    assert (closed["request_rate"], closed["max_concurrency"], closed["burstiness"]) == ("inf", 4, 1.0)
    assert (opened["request_rate"], opened["max_concurrency"]) == (40.0, None)
    assert closed["backend"] == closed["endpoint_type"] == "openai" and chat["backend"] == "openai-chat"
    # Goodput only where the scenario has an SLO (vLLM: only with --goodput); a 5 s TTFT SLO is met by all.
    assert closed["request_goodput"] == pytest.approx(closed["request_throughput"]) and opened["request_goodput"] is None
    assert closed["model_id"] == "deepseek-ai/DeepSeek-V3" and len(closed["date"]) == len("20260101-120000")


@pytest.fixture
def pytest_benchmark_installed() -> None:
    # The test extra installs it: its absence is a broken test environment, not a reason to skip.
    assert shutil.which("pytest-benchmark") is not None, "pip install pytest-benchmark"


def test_pytest_benchmark_compare_reads_two_runs(runs: list[Path], tmp_path: Path,
                                                 pytest_benchmark_installed: None) -> None:
    documents = []
    for index, folder in enumerate(runs):
        copy = Path(shutil.copytree(folder, tmp_path / f"run{index}"))
        written = write_exports(copy)
        documents.append(next(p for p in written if p.name == BENCHMARK_FILE).resolve())
    done = subprocess.run(["pytest-benchmark", "compare", *map(str, documents)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "Failed to load" not in out and "Traceback" not in out
    for profile, scenario in SCENARIOS:
        assert f"benchmark '{profile}:{scenario}': 2 tests" in out
        rows = [line for line in out.splitlines() if line.startswith(f"test_serving[{profile}:{scenario}] (")]
        assert len(rows) == 2 and {"run0/exports/benchmark)" in rows[0], "run0/exports/benchmark)" in rows[1]} == {
            True, False}


def test_benchmark_document_has_pytest_benchmarks_shape_and_tpot_samples(run: Path,
                                                                        pytest_benchmark_installed: None) -> None:
    from pytest_benchmark.stats import Stats

    write_exports(run)
    document = json.loads((run / EXPORTS_DIR / BENCHMARK_FILE).read_text())
    assert set(document) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert set(document["commit_info"]) >= {"id", "time", "dirty", "project", "branch"}
    assert document["commit_info"]["id"] == run.name
    entries = _summary_entries(run)
    assert {(b["params"]["profile"], b["params"]["scenario"]) for b in document["benchmarks"]} == SCENARIOS
    for bench in document["benchmarks"]:
        assert set(bench) == {"group", "name", "fullname", "params", "param", "extra_info", "options", "stats"}
        assert set(bench["stats"]) == set(Stats.fields) | {"data", "iterations"}
        metrics = entries[(bench["params"]["profile"], bench["params"]["scenario"])]["metrics"]
        stats = bench["stats"]
        assert stats["rounds"] == len(stats["data"]) == metrics["completed"]
        # seconds per output token: the TPOT of each request (ms in summary.json)
        assert 1e3 * stats["median"] == pytest.approx(metrics["tpot_ms"]["p50"], rel=1e-9)
        assert 1e3 * stats["mean"] == pytest.approx(metrics["tpot_ms"]["mean"], rel=1e-9)
        assert stats["ops"] == pytest.approx(1 / stats["mean"], rel=1e-9)
        assert bench["extra_info"]["output_throughput"] == pytest.approx(metrics["output_throughput"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-4, max_value=1.0, allow_nan=False), min_size=1, max_size=40))
def test_sample_stats_are_pytest_benchmarks_own(data: list[float]) -> None:
    stats_module = pytest.importorskip("pytest_benchmark.stats")
    theirs = stats_module.Stats()
    for value in data:
        theirs.update(value)
    ours = benchmark_json.sample_stats(data)
    for name in stats_module.Stats.fields:
        expected = getattr(theirs, name)
        if isinstance(expected, str):
            assert ours[name] == expected, name
        else:
            assert math.isclose(ours[name], expected, rel_tol=1e-9, abs_tol=1e-15), name


def test_a_scenario_cut_short_has_no_export_and_its_old_file_goes(run: Path) -> None:
    first = write_exports(run)
    records = run / "records.jsonl"
    lines = records.read_text().splitlines()
    last_end = max(i for i, line in enumerate(lines) if '"type":"scenario_end"' in line)
    cut = json.loads(lines[last_end])
    records.write_text("\n".join(lines[:last_end] + lines[last_end + 1:]) + "\n")  # killed before its end line
    second = write_exports(run)
    assert len(second) == len(first) - 1
    names = {p.name for p in (run / EXPORTS_DIR / VLLM_DIR).glob("*.json")}
    assert len(names) == 2 and not any(cut["scenario"] in name for name in names)
    benchmarks = json.loads((run / EXPORTS_DIR / BENCHMARK_FILE).read_text())["benchmarks"]
    assert cut["scenario"] not in {b["params"]["scenario"] for b in benchmarks}


def test_a_scenario_that_could_not_be_measured_when_run_again_has_no_export(run: Path) -> None:
    write_exports(run)
    records = run / "records.jsonl"
    start = next(json.loads(line) for line in records.read_text().splitlines() if '"type":"scenario"' in line)
    again = {"type": "scenario_unmeasured", "nodeid": start["nodeid"], "scenario": start["scenario"]}
    with records.open("a", encoding="utf-8") as handle:  # a continued run that lost its endpoint
        handle.write(json.dumps(again) + "\n")
    write_exports(run)
    names = {p.name for p in (run / EXPORTS_DIR / VLLM_DIR).glob("*.json")}
    assert names == {f"{p}_{s}.json" for p, s in SCENARIOS} - {f"{start['profile']}_{start['scenario']}.json"}


def test_exports_are_rebuilt_identically_from_the_files(run: Path) -> None:
    first = {p: p.read_bytes() for p in write_exports(run)}
    second = {p: p.read_bytes() for p in write_exports(run)}
    assert first == second


def test_a_folder_without_serving_scenarios_gets_no_export(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text('{"run": {"id": "x"}, "tests": []}')
    assert write_exports(tmp_path) == [] and not (tmp_path / EXPORTS_DIR).exists()


def test_csv_holds_every_scenario_of_every_profile(runs: list[Path]) -> None:
    for folder in runs:
        rows = list(csv.DictReader((folder / "test_result.csv").open(encoding="utf-8")))
        in_csv = [(row["profile"], row["scenario"]) for row in rows]
        started = {(line["profile"], line["scenario"]) for line in map(json.loads, (folder / "records.jsonl").open())
                   if line.get("type") == "scenario"}
        assert sorted(in_csv) == sorted(SCENARIOS) == sorted(started) == sorted(_summary_entries(folder))
        assert {row["verdict"] for row in rows} == {"pass"} and all(row["completed"] for row in rows)


def test_a_gate_run_leaves_its_exports_and_report_rebuilds_them(runs: list[Path], tmp_path: Path) -> None:
    """The session writes the exports when it ends; `pytest-deepseek report` writes the same files."""
    run = runs[0]
    written = sorted(p.relative_to(run) for p in (run / EXPORTS_DIR).rglob("*.json"))
    assert Path(EXPORTS_DIR) / BENCHMARK_FILE in written and any(VLLM_DIR in str(p) for p in written)
    copy = Path(shutil.copytree(run, tmp_path / run.name))
    before = {p: (copy / p).read_bytes() for p in written}
    shutil.rmtree(copy / EXPORTS_DIR)
    done = subprocess.run([sys.executable, "-m", "pytest_deepseek.cli", "report", str(copy)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert {p: (copy / p).read_bytes() for p in written} == before


def test_two_tests_measuring_the_same_scenario_get_two_files(run: Path) -> None:
    """A second test (another nodeid) with the same profile and scenario does not overwrite the first's file."""
    path = run / "records.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    first = lines[0]
    copied = [dict(line, nodeid="other.py::test_again") for line in lines
              if (line.get("nodeid"), line.get("scenario")) == (first["nodeid"], first["scenario"])]
    with path.open("a") as out:
        out.writelines(json.dumps(line) + "\n" for line in copied)
    written = [p for p in write_exports(run) if p.parent.name == VLLM_DIR]
    assert len(written) == len(SCENARIOS) + 1 and len({p.name for p in written}) == len(written)
