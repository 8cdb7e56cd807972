"""Results read back from a run folder (`report/rebuild.py`, `pytest-deepseek report`): each gate's
results decided again from what it wrote equal the results it returned; unfinished tests, torn lines
and folders that are not runs are said as such. (The serving gate against a real subprocess that is
killed: tests/plugin/test_nothing_lost.py.)"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from pytest_deepseek import cli
from pytest_deepseek.accuracy import gate as accuracy_gate
from pytest_deepseek.context import GateContext
from pytest_deepseek.report.entries import with_session_fingerprint
from pytest_deepseek.report.journal import JsonLines, end_torn_line, latest_per_test
from pytest_deepseek.report.rebuild import RunDirError, find_run_dir, rebuild_run
from pytest_deepseek.report.store import RunFolder
from pytest_deepseek.serving import gate as serving_gate
from pytest_deepseek.serving.journal import scenario_from_json, scenario_json
from pytest_deepseek.serving.spec import Scenario
from pytest_deepseek.settings import Settings
from pytest_deepseek.thresholds import Profile
from pytest_deepseek.training import gate as training_gate
from pytest_deepseek.verdict import GateResult

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "data" / "training" / "mmengine-toy"
EVAL_RESULTS = REPO / "tests" / "data" / "eval-results"
SESSION = {"plugin_version": "0.1.0", "profile": "p", "thresholds_sha256": "abc"}
TRAINING_ENTRY = {"name": "toy", "log": "logs/toy",
                  "converge": {"metric": "loss", "below": 0.0013, "within": 2000, "statistic": "window_mean",
                               "window": 10},
                  "floors": {"tokens_per_sec": 100}}


def _context(tmp_path: Path, nodeid: str, settings: Settings | None = None) -> GateContext:
    settings = settings or Settings(results_dir=tmp_path / "results")
    folder = RunFolder(settings.results_dir, "run-1")
    folder.create()
    return GateContext(settings=settings, folder=folder, endpoint=None, nodeid=nodeid,
                       tokenizer=lambda: None, thresholds_dir=tmp_path,  # type: ignore[arg-type,return-value]
                       fingerprint=SESSION)


def _rebuilt_results(run_dir: Path) -> dict[str, GateResult]:
    return {entry.nodeid: entry.result for entry in rebuild_run(run_dir).entries}


def test_training_results_are_decided_again_from_the_evaluation(tmp_path: Path) -> None:
    shutil.copytree(TOY, tmp_path / "logs" / "toy")
    returned = {}
    for case in training_gate.cases([Profile(name="p", training=(TRAINING_ENTRY,))], Settings()):
        ctx = _context(tmp_path, f"suites/test_training.py::test_training[{case.id}]")
        returned[ctx.nodeid] = with_session_fingerprint(training_gate.run(case, ctx), SESSION)
    run_dir = ctx.folder.path
    assert [r.verdict for r in returned.values()] == ["pass", "pass"]
    assert _rebuilt_results(run_dir) == returned

    (run_dir / "training" / "p-toy.json").unlink()  # killed while evaluating
    rebuilt = rebuild_run(run_dir)
    assert rebuilt.entries == [] and not rebuilt.passed
    assert [(i.kind, i.case_id) for i in rebuilt.incomplete] == [("training", "toy:convergence"),
                                                                 ("training", "toy:speed")]


def test_accuracy_results_are_judged_again_from_the_evaluation(tmp_path: Path) -> None:
    run = next((EVAL_RESULTS / "opencompass").iterdir())
    first_summary = sorted((run / "summary").glob("summary_*.csv"))[0]
    section = {"backend": "opencompass", "datasets": [{"name": "cluewsc-dev", "reference": 66.67, "tolerance": 1.0},
                                                      {"name": "math_500", "min": 0.0}]}
    settings = Settings(results_dir=tmp_path / "results", eval_results=str(first_summary))
    returned = {}
    for case in accuracy_gate.cases([Profile(name="gate", accuracy=section, confidence=0.9)], settings):
        ctx = _context(tmp_path, f"suites/test_accuracy.py::test_accuracy[{case.id}]", settings)
        returned[ctx.nodeid] = with_session_fingerprint(accuracy_gate.run(case, ctx), SESSION)
    assert [r.verdict for r in returned.values()] == ["pass", "error"]
    assert _rebuilt_results(ctx.folder.path) == returned


def test_an_unmeasured_scenario_is_rebuilt_as_the_same_error(tmp_path: Path) -> None:
    profile = Profile(name="p", scenarios=(Scenario(input_len=32, output_len=8, concurrency=2),))
    (case,) = serving_gate.cases([profile], Settings())
    ctx = _context(tmp_path, "suites/test_serving.py::test_serving[p:in32-out8-c2]")
    result = with_session_fingerprint(serving_gate.run(case, ctx), SESSION)
    assert result.verdict == "error"
    assert _rebuilt_results(ctx.folder.path) == {ctx.nodeid: result}


def test_a_scenario_keeps_every_field_through_its_start_line() -> None:
    scenario = Scenario(input_len=64, output_len=16, request_rate=math.inf, max_concurrency=8, num_prompts=40,
                        floors={"output_throughput_per_node": 5.5}, ceilings={"ttft_ms.p99": 900},
                        slo={"ttft_ms": 1000.0}, client_health={"max_cpu_fraction": 2.0}, min_batch_s=0.5,
                        confidence=0.9, api="chat", name="burst")
    assert scenario_from_json(json.loads(json.dumps(scenario_json(scenario), allow_nan=False))) == scenario


def test_torn_lines_are_skipped_counted_and_ended(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n{"a": 2}\n{"a": 3, "b"')
    lines = JsonLines(path)
    assert list(lines) == [{"a": 1}, {"a": 2}] and lines.torn == 2
    end_torn_line(path)
    end_torn_line(path)  # once only
    assert path.read_text().endswith('{"a": 3, "b"\n')
    assert list(JsonLines(tmp_path / "missing.jsonl")) == []
    assert latest_per_test([{"nodeid": "a", "n": 1}, {"nodeid": "b", "n": 2}, {"nodeid": "a", "n": 3}]) == [
        {"nodeid": "b", "n": 2}, {"nodeid": "a", "n": 3}]


def test_report_names_the_latest_run_of_a_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(TOY, tmp_path / "logs" / "toy")
    (case, _) = training_gate.cases([Profile(name="p", training=(TRAINING_ENTRY,))], Settings())
    ctx = _context(tmp_path, "suites/test_training.py::test_training[p:toy:convergence]")
    training_gate.run(case, ctx)
    assert find_run_dir(tmp_path / "results") == ctx.folder.path
    assert cli.main(["report", str(tmp_path / "results")]) == cli.EXIT_PASSED
    out = capsys.readouterr().out
    assert "deepseek gate summary" in out and "converge" in out and f"results: {ctx.folder.path}" in out
    summary = json.loads((ctx.folder.path / "summary.json").read_text())
    assert [t["nodeid"] for t in summary["tests"]] == [ctx.nodeid] and summary["run"]["id"] == "run-1"
    assert not (ctx.folder.path / "test_result.csv").exists()  # no serving result, no CSV


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    for path in (tmp_path / "empty", tmp_path / "file.txt", tmp_path / "missing"):
        assert cli.main(["report", str(path)]) == cli.EXIT_BAD_RUN_DIR
        assert "is not a" in capsys.readouterr().err
    with pytest.raises(RunDirError):
        find_run_dir(tmp_path / "empty")


def test_a_run_with_nothing_finished_does_not_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    (run_dir / "records.jsonl").write_text("")
    assert cli.main(["report", str(run_dir)]) == cli.EXIT_NOT_PASSED
    assert "no results to report" in capsys.readouterr().out


def test_the_console_script_is_declared() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "pytest-deepseek"]
    assert (script.module, script.attr) == ("pytest_deepseek.cli", "main") and script.load() is cli.main


def test_the_command_imports_no_pytest(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_text("")
    code = ("import sys; from pytest_deepseek import cli; rc = cli.main(['report', sys.argv[1]]); "
            "print(rc, 'pytest' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "1 False"  # every gate's reader imported, pytest not
