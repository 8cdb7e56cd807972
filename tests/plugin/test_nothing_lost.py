"""Nothing lost: a run killed with SIGKILL keeps every record it wrote, and `pytest-deepseek report`
rebuilds summary.json, the CSV and the tables from them alone; Ctrl-C prints the partial summary and
exits with pytest's INTERRUPTED; `--deepseek-resume` carries the finished scenarios over and runs
the rest into the same run.

Real subprocesses against the simulator (127.0.0.1), one quick scenario and one long enough to be
stopped midway; every wait polls for its condition with a generous deadline.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.testing import LOADED_BOX

from .helpers import REPO

ENDPOINT = "--endpoint=sim://deepseek-v3?step_base_ms=10"
QUICK = "test_serving.py::test_serving[sim:in32-out16-c2]"
LONG = "test_serving.py::test_serving[sim:long-in32-out16-c2]"
THRESHOLDS = f"""\
version: 1
profiles:
  sim:
    serving:
      defaults: {{warmup: 1, client_health: {LOADED_BOX}}}
      scenarios:
        - {{input_len: 32, output_len: 16, concurrency: 2, num_prompts: 12, floors: {{output_throughput_per_node: 1}}}}
        - {{name: long, input_len: 32, output_len: 16, concurrency: 2, num_prompts: 3000,
            floors: {{output_throughput_per_node: 1}}}}
"""
DEADLINE_S = 90.0
TORN = '{"index": 99, "request_id": "torn'  # what a kill in the middle of a write leaves


def _project(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "test_serving.py").write_text((REPO / "suites" / "test_serving.py").read_text())
    (path / "thresholds.yaml").write_text(THRESHOLDS)
    (path / "pytest.ini").write_text("[pytest]\n")
    return path


def _pytest(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", ENDPOINT, "-p", "no:cacheprovider", *args]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, ValueError, KeyError):
            pass  # a file not yet there
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _run_dir(project: Path) -> Path:
    root = project / "deepseek-results"
    return root / (root / "latest").read_text().strip()


def _long_scenario_under_way(project: Path) -> bool:
    """The quick scenario's result is in summary.json and the long one has written 10 requests."""
    run = _run_dir(project)
    tests = json.loads((run / "summary.json").read_text())["tests"]
    long_records = [line for line in _lines_so_far(run / "records.jsonl")
                    if "type" not in line and line["nodeid"] == LONG and not line["warmup"]]
    return len(tests) == 1 and len(long_records) >= 10


def _lines_so_far(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a file still being written."""
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def _stopped_midway(project: Path, how: signal.Signals) -> subprocess.CompletedProcess[str]:
    """Start the run, send `how` once the long scenario is under way, and wait for the end."""
    process = subprocess.Popen(_pytest(project), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        _wait_for(lambda: _long_scenario_under_way(project), "the long scenario to be under way")
        process.send_signal(how)
        out, _ = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return subprocess.CompletedProcess(process.args, process.returncode, out, "")


def _report(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_deepseek.cli", "report", str(run_dir)],
                          capture_output=True, text=True, timeout=DEADLINE_S)


def _copy(run_dir: Path, where: Path) -> Path:
    """A copy of the run folder (same run id) that a test may change."""
    copy = where / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run killed with SIGKILL during its long scenario, and what it had written at that moment."""
    project = _project(tmp_path_factory.mktemp("killed"))
    done = _stopped_midway(project, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    run = _run_dir(project)
    return {"project": project, "run": run, "summary": json.loads((run / "summary.json").read_text()),
            "csv": (run / "test_result.csv").read_text()}


def test_every_record_written_before_the_kill_is_readable(killed: dict[str, Any]) -> None:
    lines = _lines(killed["run"] / "records.jsonl")  # every line parses
    marks = [(line["type"], line["nodeid"]) for line in lines if "type" in line]
    assert marks == [("scenario", QUICK), ("scenario_end", QUICK), ("scenario", LONG)]
    requests = [line for line in lines if "type" not in line]
    assert sum(1 for r in requests if r["nodeid"] == QUICK) == 13  # warmup included
    assert sum(1 for r in requests if r["nodeid"] == LONG and not r["warmup"]) >= 10
    assert all(r["success"] for r in requests)
    start = lines[0]
    assert start["definition"]["floors"] == {"output_throughput_per_node": 1}
    assert start["definition"]["client_health"]["max_cpu_fraction"] == 2
    assert start["target"]["simulated"] is True and start["target"]["nodes"] == 1 and start["planned"] == 12
    assert start["fingerprint"]["profile"] == "sim" and "api_key" not in json.dumps(start)


def test_report_rebuilds_the_finished_scenario_from_the_records_alone(killed: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    run = _copy(killed["run"], tmp_path)
    (run / "summary.json").unlink()
    (run / "test_result.csv").unlink()
    with (run / "records.jsonl").open("a") as records:  # a kill in the middle of a write
        records.write(TORN)
    done = _report(run)
    assert done.returncode == 1, done.stdout + done.stderr  # a scenario never finished
    rebuilt = json.loads((run / "summary.json").read_text())
    (entry,) = killed["summary"]["tests"]
    (again,) = rebuilt["tests"]
    for key in sorted(set(entry) | set(again)):  # field by field: metrics, checks, verdict, ...
        assert again.get(key) == entry.get(key), key
    assert again["verdict"] == "pass" and again["nodeid"] == QUICK
    (unfinished,) = rebuilt["incomplete"]
    assert unfinished["nodeid"] == LONG and unfinished["planned"] == 3000 and unfinished["recorded"] >= 10
    assert (run / "test_result.csv").read_text() == killed["csv"]
    out = done.stdout
    assert "deepseek gate summary" in out and "in32-out16-c2" in out and "PASS" in out
    assert f"INCOMPLETE {LONG}: {unfinished['recorded']} of 3000 measured requests on disk" in out
    assert "skipped 1 unreadable line(s)" in out


def test_resume_carries_the_finished_scenario_over_and_runs_the_rest(killed: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    run = _copy(killed["run"], tmp_path)
    with (run / "records.jsonl").open("a") as records:
        records.write(TORN)
    # The long scenario is cut to 16 prompts for speed: the quick one was measured with 12, so it is
    # measured again (a changed condition never carries over); a second continuation carries both.
    resume = _pytest(killed["project"], f"--deepseek-resume={run}", "--deepseek-num-prompts=16", "-v")
    done = subprocess.run(resume, cwd=killed["project"], capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"continuing run {run.name}: 1 finished test(s)" in done.stdout
    assert f"{QUICK} PASSED" in done.stdout and f"{LONG} PASSED" in done.stdout
    text_lines = (run / "records.jsonl").read_text().splitlines()
    assert text_lines.count(TORN) == 1  # the torn line ended: what came after it starts on a line of its own
    lines = [json.loads(line) for line in text_lines if line != TORN]
    starts = [line["nodeid"] for line in lines if line.get("type") == "scenario"]
    assert starts == [QUICK, LONG, QUICK, LONG]
    again = subprocess.run(resume, cwd=killed["project"], capture_output=True, text=True, timeout=DEADLINE_S)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{QUICK} PASSED" in again.stdout and f"{LONG} PASSED" in again.stdout
    lines_after = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines() if line != TORN]
    assert len(lines_after) == len(lines)  # nothing measured again: both results carried over
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["id"] == run.name and summary["run"]["started"] == killed["summary"]["run"]["started"]
    quick, long = summary["tests"]
    assert quick["nodeid"] == QUICK and quick["verdict"] == "pass" and quick["metrics"]["completed"] == 16
    assert long["nodeid"] == LONG and long["verdict"] == "pass" and long["metrics"]["completed"] == 16
    csv_rows = (run / "test_result.csv").read_text().splitlines()
    assert len(csv_rows) == 3 and csv_rows[0] == killed["csv"].splitlines()[0]  # header, one row per scenario

    # A finished run rebuilds to the summary and CSV it wrote, field by field.
    written, csv_text = summary, (run / "test_result.csv").read_text()
    (run / "summary.json").unlink()
    (run / "test_result.csv").unlink()
    report = _report(run)
    assert report.returncode == 0, report.stdout + report.stderr
    rebuilt = json.loads((run / "summary.json").read_text())
    assert "incomplete" not in rebuilt and len(rebuilt["tests"]) == 2
    for before, after in zip(written["tests"], rebuilt["tests"]):
        for key in sorted(set(before) | set(after)):
            assert after.get(key) == before.get(key), (before["nodeid"], key)
    assert (run / "test_result.csv").read_text() == csv_text
    table = [line for line in done.stdout.splitlines() if line.strip().startswith("sim ")]
    assert len(table) == 2 and all(row in report.stdout for row in table)  # the same tables


def test_ctrl_c_prints_the_partial_summary_and_exits_interrupted(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = _stopped_midway(project, signal.SIGINT)
    run = _run_dir(project)
    assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout
    assert "deepseek gate summary" in done.stdout and "in32-out16-c2" in done.stdout
    assert f"run interrupted: partial results in {run}" in done.stdout
    assert f"pytest-deepseek report {run}" in done.stdout and f"--deepseek-resume={run}" in done.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True and [t["nodeid"] for t in summary["tests"]] == [QUICK]
