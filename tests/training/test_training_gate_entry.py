"""The training gate's entry (`cases`, `run`) without pytest's plugin: ids, summary keys, the failure
text, once-per-run evaluation, check names and the verdict rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_deepseek.context import GateContext
from pytest_deepseek.report.store import RunFolder
from pytest_deepseek.settings import Settings
from pytest_deepseek.thresholds import Profile
from pytest_deepseek.training import evaluate_entry, load_records
from pytest_deepseek.training import gate
from pytest_deepseek.training.result import TrainingResult, training_check

from . import synth

ENTRY = {"name": "toy", "log": "logs/toy",
         "converge": {"metric": "loss", "below": 0.0013, "within": 2000, "statistic": "window_mean", "window": 10},
         "floors": {"tokens_per_sec": 100}}
SUMMARY_KEYS = {"kind", "profile", "entry", "aspect", "scenario_id", "example", "simulated", "metrics", "checks",
                "verdict", "warnings", "paths", "log"}


def context(tmp_path: Path, **settings: object) -> GateContext:
    folder = RunFolder(tmp_path / "results", "run-1")
    folder.create()
    return GateContext(settings=Settings(**settings), folder=folder, endpoint=None, nodeid="test_training",
                       tokenizer=lambda: None, thresholds_dir=tmp_path)  # type: ignore[arg-type,return-value]


def project(tmp_path: Path) -> None:
    shutil.copytree(synth.TOY, tmp_path / "logs" / "toy")


def toy_profile(*entries: dict) -> Profile:
    return Profile(name="p", training=tuple(entries))


def test_cases_make_one_test_per_entry_and_aspect() -> None:
    profiles = [toy_profile(ENTRY, {"name": "bare", "log": "x"})]
    ids = [case.id for case in gate.cases(profiles, Settings())]
    assert ids == ["p:toy:convergence", "p:toy:speed", "p:bare:convergence"]


def test_run_keeps_the_summary_keys_and_figures(tmp_path: Path) -> None:
    project(tmp_path)
    ctx = context(tmp_path)
    convergence, speed = (gate.run(case, ctx) for case in gate.cases([toy_profile(ENTRY)], ctx.settings))
    data = convergence.to_json()
    assert SUMMARY_KEYS <= set(data)
    assert data["kind"] == "training" and data["scenario_id"] == "toy:convergence" and data["simulated"] is False
    assert data["entry"] == "toy" and data["aspect"] == "convergence" and data["example"] is False
    assert data["paths"] == [str(tmp_path / "logs" / "toy")] and data["log"] == str(tmp_path / "logs" / "toy")
    assert convergence.verdict == "pass" and data["metrics"]["converge.first_crossing_iteration"] == 1067
    assert convergence.figures["converge.first_crossing_iteration"] == 1067
    assert [c.name for c in convergence.checks] == ["fail_fast", "converge", "cross_check.tokens_per_iteration"]
    assert [c.name for c in speed.checks] == ["floor.tokens_per_sec"] and speed.verdict == "pass"
    assert speed.figures["tokens_per_sec.median"] > 100
    json.dumps(data)  # plain JSON


def test_failure_text_has_expected_measured_deciding_record_and_log(tmp_path: Path) -> None:
    project(tmp_path)
    entry = {**ENTRY, "converge": {**ENTRY["converge"], "within": 1066}}
    result = gate.run(gate.TrainingCase(toy_profile(entry), entry, gate.CONVERGENCE), context(tmp_path))
    text = result.failure_text()
    assert result.verdict == "fail"
    assert text.splitlines()[0] == "FAIL: training p toy:convergence"
    assert "[fail] converge: expected loss window_mean(10) < 0.0013 by iteration 1066" in text
    assert "deciding record: " in text and '"iter": 1066' in text
    assert f"log: {tmp_path / 'logs' / 'toy'}" in text


def test_a_missing_log_is_an_error_of_every_aspect(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    results = [gate.run(case, ctx) for case in gate.cases([toy_profile(ENTRY)], ctx.settings)]
    assert [r.verdict for r in results] == ["error", "error"]
    assert all("training log not found" in r.failure_text() and "logs/toy" in r.failure_text() for r in results)


def test_the_command_line_log_beats_the_entry_log(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "other").mkdir()
    shutil.copytree(synth.TOY, tmp_path / "other" / "run")
    settings = Settings(training_log=("other/run",))
    assert gate.log_paths(ENTRY, settings, tmp_path) == [str(tmp_path / "other" / "run")]
    assert gate.log_paths(ENTRY, Settings(), tmp_path) == [str(tmp_path / "logs" / "toy")]
    assert gate.log_paths({"name": "x"}, Settings(), tmp_path) == []


def test_an_entry_is_evaluated_once_for_all_its_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path)
    calls = []
    evaluate = gate.evaluate

    def counting(*args: object, **kwargs: object) -> TrainingResult:
        calls.append(args[0])
        return evaluate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gate, "evaluate", counting)
    ctx = context(tmp_path)
    for case in gate.cases([toy_profile(ENTRY)], ctx.settings):
        gate.run(case, ctx)
    assert len(calls) == 1 and (ctx.folder.path / "training" / "p-toy.json").is_file()


def test_check_names_are_unique_and_stable(toy_log) -> None:
    entry = {"name": "all", "warmup_iters": 0,
             "converge": {"below": 0.0013}, "diverge": {"ratio": 3.0}, "plateau": {"patience": 5, "window": 10},
             "fail_fast": {"nan": True},
             "floors": {"tokens_per_sec": 1.0, "tokens_per_sec.p10": 1.0}, "ceilings": {"tokens_per_sec": 1e9}}
    result = evaluate_entry(entry, toy_log)
    names = [c.name for c in result.checks]
    assert names == ["fail_fast", "converge", "diverge", "plateau", "floor.tokens_per_sec",
                     "floor.tokens_per_sec.p10", "ceiling.tokens_per_sec", "cross_check.tokens_per_iteration"]
    profile = toy_profile(entry)
    evaluation = {**result.to_json(), "paths": ["x"]}
    props = []
    for aspect in gate.aspects_of(entry):
        decided = gate.decide(gate.TrainingCase(profile, entry, aspect), evaluation)
        props += [name for name, _ in decided.junit_properties() if name.startswith("deepseek.check.")]
    assert len(props) == len(set(props)) == len(names)


def test_error_outranks_fail_in_one_aspect() -> None:
    fail = training_check("converge", "fail", "never reached", final=True)
    error = training_check("cross_check.tokens_per_iteration", "error", "mis-parsed log", final=True)
    evaluation = {**TrainingResult("e", [fail, error], {}).to_json(), "paths": []}
    entry = {"name": "e"}
    result = gate.decide(gate.TrainingCase(toy_profile(entry), entry, gate.CONVERGENCE), evaluation)
    assert result.verdict == "error" and TrainingResult("e", [fail, error], {}).verdict == "error"


def test_an_aspect_without_checks_is_an_error_not_a_pass() -> None:
    entry = {"name": "e", "floors": {"tokens_per_sec": 1}}
    only_convergence = training_check("converge", "pass", "ok", final=True)
    evaluation = {**TrainingResult("e", [only_convergence], {}).to_json(), "paths": []}
    result = gate.decide(gate.TrainingCase(toy_profile(entry), entry, gate.SPEED), evaluation)
    assert result.verdict == "error" and result.checks[0].name == "no_checks"
    assert result.checks[0].message.startswith("no checks:")
    assert TrainingResult("e", [], {}).verdict == "error"


def test_the_packaged_example_runs_through_the_gate(tmp_path: Path) -> None:
    entry = {"name": "example", "log": "package:examples/mmengine-toy", "example": True,
             "converge": {"below": 0.0013, "within": 2000}}
    result = gate.run(gate.TrainingCase(toy_profile(entry), entry, gate.CONVERGENCE), context(tmp_path))
    assert result.verdict == "pass" and result.to_json()["example"] is True


def test_loaded_records_match_the_cached_evaluation(tmp_path: Path, toy_log) -> None:
    project(tmp_path)
    ctx = context(tmp_path)
    case = gate.TrainingCase(toy_profile(ENTRY), ENTRY, gate.CONVERGENCE)
    cached = gate.run(case, ctx)
    direct = evaluate_entry(ENTRY, load_records(tmp_path / "logs" / "toy"))
    assert [c.to_json() for c in cached.checks] == [c.to_json() for c in gate.aspect_checks(direct.checks,
                                                                                           gate.CONVERGENCE)]
