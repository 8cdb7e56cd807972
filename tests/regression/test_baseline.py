"""Baselines: a run folder saved under a name or path, found again, and read back into comparable evidence
(run folders made by the training and accuracy gates themselves, as a run writes them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_deepseek import cli
from pytest_deepseek.accuracy import gate as accuracy_gate
from pytest_deepseek.context import GateContext
from pytest_deepseek.regression.against import against_baseline
from pytest_deepseek.regression.baseline import (BASELINE_FILE, BaselineError, available, load_results, resolve,
                                                 save_baseline)
from pytest_deepseek.regression.compare import compare_runs
from pytest_deepseek.regression.evidence import AccuracyMaterial, TrainingMaterial
from pytest_deepseek.regression.load import SPEEDS_SUFFIX, load_run
from pytest_deepseek.regression.spec import RegressionSpec
from pytest_deepseek.report.entries import with_session_fingerprint
from pytest_deepseek.report.rebuild import rebuild_run, write_rebuilt
from pytest_deepseek.report.store import RunFolder
from pytest_deepseek.settings import Settings
from pytest_deepseek.thresholds import Profile
from pytest_deepseek.training import gate as training_gate
from pytest_deepseek.verdict import GateResult

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "data" / "training" / "mmengine-toy"
EVALSCOPE = REPO / "tests" / "data" / "eval-results" / "evalscope"
SESSION = {"plugin_version": "0.1.0", "profile": "p", "hardware": "H800"}
TRAINING = {"name": "toy", "log": "logs/toy",
            "converge": {"metric": "loss", "below": 0.0013, "within": 2000, "statistic": "window_mean", "window": 10},
            "floors": {"tokens_per_sec": 100}}
ACCURACY = {"backend": "evalscope", "datasets": [{"name": "mmlu", "min": 50.0}, {"name": "math_500", "min": 50.0}]}


def make_run(root: Path, run_id: str, session: dict[str, object] = SESSION) -> Path:
    """A run folder holding what the training and accuracy gates write, and its summary.json."""
    settings = Settings(results_dir=root / "results", eval_results=str(EVALSCOPE))
    folder = RunFolder(settings.results_dir, run_id)
    folder.create()
    profile = Profile(name="p", training=(TRAINING,), accuracy=ACCURACY)
    for gate in (training_gate, accuracy_gate):
        for case in gate.cases([profile], settings):
            ctx = GateContext(settings=settings, folder=folder, endpoint=None, nodeid=f"suites/t.py::t[{case.id}]",
                              tokenizer=lambda: None, thresholds_dir=root,  # type: ignore[arg-type,return-value]
                              fingerprint=session)
            with_session_fingerprint(gate.run(case, ctx), session)
    write_rebuilt(folder.path, rebuild_run(folder.path))
    return folder.path


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copytree(TOY, tmp_path / "logs" / "toy")
    return tmp_path


def test_a_baseline_keeps_what_results_are_decided_from(project: Path) -> None:
    run = make_run(project, "run-1")
    results = project / "results"
    saved = save_baseline(run, "main", results)
    assert saved == results / "baselines" / "main" and available(results) == ["main"]
    header = json.loads((saved / BASELINE_FILE).read_text())
    assert header["name"] == "main" and header["source"] == str(run) and header["run_id"] == "run-1"
    assert (saved / "summary.json").is_file() and (saved / "training" / "cases.jsonl").is_file()
    assert (saved / "accuracy" / "cases.jsonl").is_file() and (saved / "accuracy" / "p.json").is_file()
    assert not (saved / "accuracy" / "p").exists()  # the backend's own output folder stays behind
    speeds = json.loads((saved / "training" / f"p-toy{SPEEDS_SUFFIX}").read_text())
    assert len(speeds["floor.tokens_per_sec"]) > 100
    assert resolve("main", results) == saved and resolve(str(run), results) == run
    assert resolve(str(results), results) == run  # a results folder means its latest run
    by_test = load_results("main", results)
    assert set(by_test) == set(load_results(str(run), results)) and len(by_test) == 4
    with pytest.raises(BaselineError, match="saved baselines: main"):
        resolve("nightly", results)
    elsewhere = save_baseline(run, str(project / "kept" / "h800"), results)
    assert elsewhere == project / "kept" / "h800" and (elsewhere / "records.jsonl").exists() is False
    assert save_baseline(run, "main", results) == saved and available(results) == ["main"]  # replaced whole
    with pytest.raises(BaselineError, match="inside the run folder"):
        save_baseline(run, str(run / "b"), results)


def test_evidence_read_back_from_a_run_and_its_baseline(project: Path) -> None:
    run = make_run(project, "run-1")
    saved = save_baseline(run, "main", project / "results")
    shutil.rmtree(project / "logs")  # the training log moved away: the baseline kept its values
    for folder, has_values in ((saved, True), (run, False)):
        evidence = {t.nodeid: t for t in load_run(folder).tests}
        speed = evidence["suites/t.py::t[p:toy:speed]"].material
        assert isinstance(speed, TrainingMaterial)
        (series,) = speed.speeds
        assert series.metric == "tokens_per_sec" and series.statistic == "median"
        assert (series.values is not None) == has_values
        if not has_values:
            assert "cannot be read again" in series.source
        convergence = evidence["suites/t.py::t[p:toy:convergence]"].material
        assert isinstance(convergence, TrainingMaterial) and convergence.converge is not None
        assert convergence.converge.metric == "loss" and convergence.converge.first_crossing == 1067
        mmlu = evidence["suites/t.py::t[p:mmlu]"].material
        assert isinstance(mmlu, AccuracyMaterial) and mmlu.score == 75.0 and mmlu.n == 4 and len(mmlu.items) == 4


def test_a_run_compared_with_its_baseline_shows_the_changed_conditions(project: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = make_run(project, "run-1")
    save_baseline(before, "main", project / "results")
    after = make_run(project, "run-2", {**SESSION, "hardware": "H20"})
    comparison = compare_runs(load_run(project / "results" / "baselines" / "main"), load_run(after),
                              RegressionSpec.of({"tokens_per_sec": "10%"}))
    by_test = {t.label: {m.metric: m for m in t.metrics} for t in comparison.tests}
    assert set(by_test) == {"p:toy:convergence", "p:toy:speed", "p:mmlu", "p:math_500"}
    speed = by_test["p:toy:speed"]["tokens_per_sec"]  # the same log twice: its median is known to about 3%
    assert speed.verdict == "pass" and speed.change == 0 and -0.05 < speed.low < -0.01
    assert by_test["p:toy:convergence"]["loss"].verdict == "pass"
    assert "paired on 4 items" in by_test["p:mmlu"]["score"].method
    assert by_test["p:mmlu"]["score"].verdict == "inconclusive"  # 4 items cannot hold a 1-point tolerance
    assert [(d.field, d.a, d.b) for d in comparison.fingerprint] == [("hardware", ("H800",), ("H20",))]

    out_json = tmp_path / "comparison.json"
    rc = cli.main(["compare", "main", str(after), "--results-dir", str(project / "results"), "--json", str(out_json)])
    assert rc == cli.EXIT_PASSED  # nothing regressed; undecided (3% on this noisy speed) is not a regression
    out = capsys.readouterr().out
    assert "regression: B = " in out and "tokens_per_sec" in out and "hardware" in out and "H20" in out
    document = json.loads(out_json.read_text())
    assert document["regressed"] is False and len(document["tests"]) == 4
    assert document["fingerprint_differences"] == [{"field": "hardware", "a": ["H800"], "b": ["H20"],
                                                    "where": "4 of 4 test(s)"}]


def test_compare_refuses_bad_input(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(project, "run-1")
    results = ["--results-dir", str(project / "results")]
    assert cli.main(["compare", "nightly", str(run), *results]) == cli.EXIT_BAD_RUN_DIR
    assert "neither a run folder nor a baseline" in capsys.readouterr().err
    assert cli.main(["compare", str(run), str(run), "--tolerance", "score", *results]) == cli.EXIT_BAD_RUN_DIR
    assert "expected METRIC=VALUE" in capsys.readouterr().err
    assert cli.main(["compare", str(run), str(run), "--tolerance", "ttft_ms.p999=5%", *results]) == cli.EXIT_BAD_RUN_DIR
    assert "did you mean 'ttft_ms.p99'" in capsys.readouterr().err
    empty = project / "other"
    empty.mkdir()
    (empty / "records.jsonl").write_text("")
    assert cli.main(["compare", str(run), str(empty), *results]) == cli.EXIT_BAD_RUN_DIR
    assert "no test in common" in capsys.readouterr().err


def test_a_finished_test_gets_its_regression_checks_against_the_baseline(project: Path) -> None:
    before = make_run(project, "run-1")
    baseline = load_run(save_baseline(before, "main", project / "results"), label="main")
    after = make_run(project, "run-2")
    results = load_results(str(after), project / "results")
    spec = RegressionSpec.of({"tokens_per_sec": "10%"})
    speed = against_baseline(results["suites/t.py::t[p:toy:speed]"], "suites/t.py::t[p:toy:speed]", after,
                             baseline, spec)
    assert [c.name for c in speed.checks] == ["floor.tokens_per_sec", "regression.tokens_per_sec"]
    assert speed.verdict == "pass" and speed.checks[-1].details["against"] == "main"
    mmlu = against_baseline(results["suites/t.py::t[p:mmlu]"], "suites/t.py::t[p:mmlu]", after, baseline, spec)
    assert mmlu.checks[-1].name == "regression.score" and mmlu.verdict == "inconclusive"  # 4 items
    assert against_baseline(results["suites/t.py::t[p:mmlu]"], "suites/t.py::t[p:mmlu]", after, baseline, spec,
                            allow_inconclusive=True).verdict == "pass"
    new = GateResult("accuracy", "p", "gsm8k", "pass")
    unmatched = against_baseline(new, "suites/t.py::t[p:gsm8k]", after, baseline, spec)
    assert unmatched.checks == () and "has no result for this test" in unmatched.warnings[-1]


def test_a_summary_alone_is_compared_on_its_figures_without_deciding(project: Path) -> None:
    run = make_run(project, "run-1")
    bare = project / "bare"
    bare.mkdir()
    shutil.copy2(run / "summary.json", bare / "summary.json")
    comparison = compare_runs(load_run(bare), load_run(run), RegressionSpec.of())
    by_test = {t.label: {m.metric: m for m in t.metrics} for t in comparison.tests}
    convergence = by_test["p:toy:convergence"]  # every figure of it is in its summary entry
    assert {m: c.verdict for m, c in convergence.items()} == {"loss": "pass", "iterations_to_converge": "pass"}
    speed = by_test["p:toy:speed"]["tokens_per_sec"]
    assert speed.change == 0 and speed.verdict == "inconclusive" and "no training evaluation" in speed.a.method
    score = by_test["p:mmlu"]["score"]
    assert score.a.value == score.b.value == 75.0 and score.verdict == "inconclusive"
    assert "no evaluation for this test" in score.why_undecided()


def test_saving_never_replaces_what_is_not_a_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The working directory, the results folder, a folder holding the run or any other existing
    folder is refused, untouched; a new folder and an earlier baseline are fine."""
    from pytest_deepseek.regression.baseline import save_baseline

    project = tmp_path / "project"
    run = project / "deepseek-results" / "run1"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"run": {"id": "run1"}, "tests": []}))
    (project / "src").mkdir()
    (project / "src" / "important.py").write_text("keep me\n")
    (project / "notes").mkdir()
    (project / "notes" / "todo.txt").write_text("keep me too\n")
    monkeypatch.chdir(project)
    results = Path("deepseek-results")
    for target in (".", "./deepseek-results", "deepseek-results/run1", "./notes", str(project)):
        with pytest.raises(BaselineError):
            save_baseline(run, target, results)
    assert (project / "src" / "important.py").read_text() == "keep me\n"
    assert (project / "notes" / "todo.txt").is_file() and (run / "summary.json").is_file()
    saved = save_baseline(run, "./kept/v1", results)
    assert (saved / BASELINE_FILE).is_file()
    assert save_baseline(run, "./kept/v1", results) == saved  # an earlier baseline is replaced
