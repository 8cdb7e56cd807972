"""The accuracy gate's entry: cases, the option-over-section rule, one evaluation per profile, the result."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.accuracy import gate
from pytest_deepseek.accuracy.evaluation import Evaluation, EvaluationPlan
from pytest_deepseek.context import GateContext, SessionDeadline
from pytest_deepseek.endpoint import EndpointInfo, EndpointSetupError
from pytest_deepseek.report.store import RunFolder
from pytest_deepseek.settings import Settings
from pytest_deepseek.thresholds import Profile

# The keys summary.json entries of the accuracy gate have always had.
RESULT_KEYS = {"kind", "profile", "dataset", "scenario_id", "backend", "simulated", "example", "results_dir", "log",
               "metrics", "checks", "verdict", "message", "warnings"}
SESSION = EndpointInfo(url="http://127.0.0.1:9/v1", base_url="http://127.0.0.1:9/v1", model="served",
                       models=("served",), simulated=False)


def profile(section: dict[str, Any], **kw: Any) -> Profile:
    return Profile(name="gate", accuracy=section, **kw)


def section(*datasets: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"backend": "evalscope", "datasets": list(datasets), **kw}


def context(tmp_path: Path, settings: Settings | None = None, endpoint: EndpointInfo | None = None,
            thresholds_dir: Path | None = None) -> GateContext:
    settings = settings or Settings(results_dir=tmp_path / "results")
    return GateContext(settings=settings, folder=RunFolder(settings.results_dir, "run"), endpoint=endpoint,
                       nodeid="suites/test_accuracy.py::test_accuracy", tokenizer=lambda: None,  # type: ignore[arg-type,return-value]
                       thresholds_dir=thresholds_dir)


def case_of(p: Profile, name: str) -> gate.AccuracyCase:
    (case,) = [c for c in gate.cases([p], Settings()) if c.name == name]
    return case


def test_one_case_per_dataset_with_todays_ids() -> None:
    with_accuracy = profile(section({"name": "cluewsc-dev", "min": 50.0}, {"name": "mmlu", "min": 40.0}))
    cases = gate.cases([with_accuracy, Profile(name="serving-only")], Settings())
    assert [c.id for c in cases] == ["gate:cluewsc-dev", "gate:mmlu"]
    assert cases[0].section["backend"] == "evalscope" and cases[1].dataset == {"name": "mmlu", "min": 40.0}


@pytest.mark.parametrize(
    ("accuracy", "settings", "needs"),
    [
        (section({"name": "mmlu", "min": 1.0}), Settings(), True),
        (section({"name": "mmlu", "min": 1.0}), Settings(eval_results="out"), False),
        (section({"name": "mmlu", "min": 1.0}, results="out"), Settings(), False),
        (section({"name": "mmlu", "min": 1.0}, endpoint="sim://deepseek-r1?content=answer_key"), Settings(), False),
        (None, Settings(), False),
    ],
)
def test_needs_endpoint(accuracy: dict[str, Any] | None, settings: Settings, needs: bool) -> None:
    assert gate.needs_endpoint(Profile(name="gate", accuracy=accuracy), settings) is needs


def test_the_option_beats_the_section_and_paths_follow_the_thresholds_file(tmp_path: Path) -> None:
    p = profile(section({"name": "mmlu", "min": 1.0}, data="data", limit=5, model="grader", results="old",
                        generation={"temperature": 0.6}), api="chat", tokenizer="tok")
    plan = gate.plan_evaluation(p, Settings(), work_dir=tmp_path / "w", base_dir=tmp_path)
    assert plan == EvaluationPlan(
        backend="evalscope", datasets=("mmlu",), results=tmp_path / "old", own_endpoint=None, model="grader",
        api="chat", api_key=None, data_dir=tmp_path / "data", generation={"temperature": 0.6},
        tokenizer_path=Path("tok"), opencompass_python=None, limit=5, work_dir=tmp_path / "w",
    )
    options = Settings(eval_backend="lm-eval", eval_results="/abs/new", eval_data="d2", eval_limit=2, model="m",
                       api="completions", tokenizer="/tok2", api_key="k", opencompass_python="/oc/python")
    plan = gate.plan_evaluation(p, options, work_dir=tmp_path / "w", base_dir=tmp_path)
    assert (plan.backend, plan.results, plan.data_dir, plan.limit, plan.model, plan.api) == (
        "lm-eval", Path("/abs/new"), tmp_path / "d2", 2, "m", "completions")
    assert (plan.tokenizer_path, plan.api_key, plan.opencompass_python) == (Path("/tok2"), "k", "/oc/python")


def test_no_endpoint_and_no_results_is_an_error_never_a_skip(tmp_path: Path) -> None:
    case = case_of(profile(section({"name": "mmlu", "min": 50.0})), "mmlu")
    result = gate.run(case, context(tmp_path))
    assert result.verdict == "error"
    data = result.to_json()
    assert RESULT_KEYS <= set(data)
    assert data["message"].startswith("mmlu: the evaluation did not run: no endpoint to evaluate: pass --endpoint=URL, "
                                      "or --deepseek-eval-results=DIR")
    assert data["checks"][0]["verdict"] == "error" and data["results_dir"] is None
    text = result.failure_text()
    assert text.startswith("ERROR: accuracy gate mmlu")
    assert "no endpoint to evaluate" in text and "results_dir: -" in text


def test_earlier_results_are_judged_per_dataset(tmp_path: Path, results_dir: Path) -> None:
    run = next((results_dir / "opencompass").iterdir())
    first_summary = sorted((run / "summary").glob("summary_*.csv"))[0]  # math-500 printed '-' there
    p = profile(section({"name": "cluewsc-dev", "reference": 66.67, "tolerance": 1.0},
                        {"name": "math_500", "min": 0.0}, backend="opencompass", example=True))
    ctx = context(tmp_path, Settings(results_dir=tmp_path / "results", eval_results=str(first_summary)))
    passed = gate.run(case_of(p, "cluewsc-dev"), ctx)
    assert passed.verdict == "pass" and passed.figures == {"score": pytest.approx(66.67)}
    data = passed.to_json()
    assert RESULT_KEYS <= set(data)
    assert (data["kind"], data["profile"], data["dataset"], data["scenario_id"]) == (
        "accuracy", "gate", "cluewsc-dev", "cluewsc-dev")
    assert data["backend"] == "opencompass" and data["example"] is True and data["simulated"] is False
    assert data["results_dir"] == data["log"] == str(first_summary)
    assert data["metrics"]["reference"] == 66.67 and data["metrics"]["native_name"] == "cluewsc-dev"
    (check,) = data["checks"]
    assert (check["name"], check["metric"], check["op"], check["threshold"]) == (
        "cluewsc-dev", "score", ">= reference -", 66.67)
    assert check["low"] < check["value"] < check["high"]
    json.dumps(data)
    failed = gate.run(case_of(p, "math_500"), ctx)
    assert failed.verdict == "error"
    text = failed.failure_text()
    assert text.startswith("ERROR: accuracy gate math_500")
    assert "its evaluation failed" in text and f"results_dir: {first_summary}" in text


def test_a_dataset_missing_from_the_results_names_those_present(tmp_path: Path, results_dir: Path) -> None:
    p = profile(section({"name": "gsm8k", "min": 10.0}, results=str(results_dir / "lm-eval"), backend="lm-eval"))
    result = gate.run(case_of(p, "gsm8k"), context(tmp_path))
    assert result.verdict == "error"
    assert "datasets in the results:" in result.checks[0].message
    assert result.to_json()["message"].startswith("gsm8k: error: no score for this dataset")


def test_an_errored_item_is_an_error(tmp_path: Path, results_dir: Path) -> None:
    p = profile(section({"name": "mmlu", "min": 50.0}, results=str(results_dir / "evalscope-errored")))
    result = gate.run(case_of(p, "mmlu"), context(tmp_path))
    assert result.verdict == "error" and result.metrics["errored"] >= 1


def test_one_evaluation_per_profile_and_run(tmp_path: Path, results_dir: Path, monkeypatch) -> None:
    calls: list[EvaluationPlan] = []
    real = gate.read_evaluation

    def counting(plan: EvaluationPlan) -> Evaluation:
        calls.append(plan)
        return real(plan)

    monkeypatch.setattr(gate, "read_evaluation", counting)
    p = profile(section({"name": "math_500", "min": 75.0}, {"name": "mmlu", "min": 40.0}, backend="opencompass",
                        results=str(next((results_dir / "opencompass").iterdir()))))
    ctx = context(tmp_path)
    verdicts = [gate.run(case, ctx).verdict for case in gate.cases([p], ctx.settings)]
    assert verdicts == ["pass", "pass"] and len(calls) == 1
    assert (ctx.folder.path / "accuracy" / "gate.json").is_file()


def _fake_run(seen: list[Any], label: str):
    def run_evaluation(plan: EvaluationPlan, endpoint: EndpointInfo, timeout_s: float | None = None) -> Evaluation:
        seen.append((label, plan, endpoint, timeout_s))
        return Evaluation(error="stopped here", backend=plan.backend, endpoint=endpoint.base_url)

    return run_evaluation


def test_the_session_endpoint_is_held_while_it_is_evaluated(tmp_path: Path, monkeypatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(gate, "run_evaluation", _fake_run(seen, "run"))

    @contextlib.contextmanager
    def measuring(self: GateContext, endpoint: EndpointInfo) -> Iterator[None]:
        seen.append(("held", endpoint.base_url))
        yield

    monkeypatch.setattr(GateContext, "measuring", measuring)
    case = case_of(profile(section({"name": "mmlu", "min": 50.0})), "mmlu")
    result = gate.run(case, context(tmp_path, endpoint=SESSION))
    assert [s[0] for s in seen] == ["held", "run"] and seen[1][2] == SESSION
    assert result.verdict == "error" and "stopped here" in result.failure_text()


def test_the_backend_gets_the_time_the_session_has_left(tmp_path: Path, monkeypatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(gate, "run_evaluation", _fake_run(seen, "run"))
    case = case_of(profile(section({"name": "mmlu", "min": 50.0})), "mmlu")
    gate.run(case, context(tmp_path, endpoint=SESSION))
    assert seen[-1][3] is None  # no session deadline: the backend runs to its end
    ctx = dataclasses.replace(context(tmp_path / "b", endpoint=SESSION),
                              session_deadline=SessionDeadline(limit_s=600, started_at=time.time() - 100))
    gate.run(case, ctx)
    assert 480 < seen[-1][3] <= 500  # 600 s, 100 s gone


def test_an_own_endpoint_is_opened_for_the_evaluation_not_held(tmp_path: Path, monkeypatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(gate, "run_evaluation", _fake_run(seen, "run"))
    opened: list[dict[str, Any]] = []
    own = EndpointInfo(url="sim://deepseek-r1", base_url="http://127.0.0.1:8/v1", model="grader",
                       models=("grader",), simulated=True)

    @contextlib.contextmanager
    def open_endpoint(url: str, *, model: str | None, api_key: Any, workdir: Path, tls: Any) -> Iterator[EndpointInfo]:
        opened.append({"url": url, "model": model, "workdir": workdir})
        yield own

    def measuring(self: GateContext, endpoint: EndpointInfo) -> None:
        raise AssertionError("the section's own endpoint is not the session's")

    monkeypatch.setattr("pytest_deepseek.endpoint.open_endpoint", open_endpoint)
    monkeypatch.setattr(GateContext, "measuring", measuring)
    p = profile(section({"name": "mmlu", "min": 50.0}, endpoint="sim://deepseek-r1", model="grader"))
    ctx = context(tmp_path, endpoint=SESSION)
    gate.run(case_of(p, "mmlu"), ctx)
    assert opened == [{"url": "sim://deepseek-r1", "model": "grader",
                       "workdir": ctx.folder.path / "accuracy" / "gate"}]
    assert seen[0][2] == own


def test_an_own_endpoint_that_cannot_be_opened_is_an_error(tmp_path: Path, monkeypatch) -> None:
    @contextlib.contextmanager
    def open_endpoint(url: str, **kw: Any) -> Iterator[EndpointInfo]:
        raise EndpointSetupError("endpoint http://127.0.0.1:7/v1 is not usable: connection refused")
        yield  # pragma: no cover

    monkeypatch.setattr("pytest_deepseek.endpoint.open_endpoint", open_endpoint)
    p = profile(section({"name": "mmlu", "min": 50.0}, endpoint="http://127.0.0.1:7/v1"))
    result = gate.run(case_of(p, "mmlu"), context(tmp_path))
    assert result.verdict == "error" and "connection refused" in result.checks[0].message
