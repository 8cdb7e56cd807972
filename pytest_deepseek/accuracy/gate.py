"""The accuracy gate: one test per dataset of a profile's `accuracy:` section.

One evaluation per profile and run covers all of its datasets; the dataset tests share it (xdist
workers too, through a locked JSON file in the results folder). The evaluation reads earlier
results (`--deepseek-eval-results` or the section's `results:`), or runs the section's backend
against its own `endpoint:` (a `sim://` URL there starts its own simulator, e.g. one answering from
the bundled answer key), or else against the session endpoint, held like a perf run so that no
throughput measurement overlaps it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import resolve_path
from ..report.journal import (CASES_FILE, Incomplete, JsonLines, OnDisk, Replayed, json_line, latest_per_test,
                              read_json_object)
from ..report.once import once_per_run
from ..report.store import safe_name
from ..verdict import Check, GateResult
from .evaluation import Evaluation, EvaluationPlan, dataset_names, read_evaluation, run_evaluation

if TYPE_CHECKING:
    from ..context import GateContext
    from ..settings import Settings
    from ..thresholds import Profile
    from .rule import AccuracyCheck

NO_ENDPOINT = ("no endpoint to evaluate: pass --endpoint=URL, or --deepseek-eval-results=DIR to judge "
               "an earlier evaluation")


@dataclass(frozen=True)
class AccuracyCase:
    """One accuracy test: a profile, its `accuracy:` section and one dataset entry of it."""

    profile: "Profile"
    section: Mapping[str, Any]
    dataset: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The dataset's name."""
        return str(self.dataset["name"])

    @property
    def id(self) -> str:
        return f"{self.profile.name}:{self.dataset.get('name')}"


def cases(profiles: Sequence["Profile"], settings: "Settings") -> list[AccuracyCase]:
    """Every dataset of the profiles' `accuracy:` sections (the options do not change the list)."""
    return [AccuracyCase(profile, dict(profile.accuracy), dict(dataset))
            for profile in profiles if profile.accuracy
            for dataset in profile.accuracy.get("datasets", [])]


def needs_endpoint(profile: "Profile", settings: "Settings") -> bool:
    """True when the profile's accuracy section would evaluate the session endpoint (no results to
    read, no endpoint of its own)."""
    section = profile.accuracy
    if not section:
        return False
    return settings.layered("eval_results", section.get("results")) is None and not section.get("endpoint")


def run(case: AccuracyCase, ctx: "GateContext") -> GateResult:
    """Judge one dataset, evaluating its profile first if no test of this run has yet.

    The case is noted in `accuracy/cases.jsonl` first, so that the result can be judged again from
    the results folder alone (`on_disk`).
    """
    line = case_line(case, ctx.nodeid, ctx.fingerprint, ctx.thresholds_dir)
    ctx.folder.append_lines(ctx.folder.path / "accuracy" / CASES_FILE, [json_line(line)])
    evaluation = evaluate_once(case.profile, ctx)
    return judge_dataset(case, evaluation, base_dir=ctx.thresholds_dir)


def evaluation_stem(profile: "Profile") -> str:
    """The name of the profile's once-per-run evaluation file (`accuracy/<stem>.json`)."""
    return safe_name(profile.name)


def case_line(case: AccuracyCase, nodeid: str, fingerprint: Mapping[str, Any],
              base_dir: Path | None) -> dict[str, Any]:
    """The case as `accuracy/cases.jsonl` keeps it: the test, the profile's name and confidence, the
    section and dataset entry, where relative paths are taken from, and its evaluation."""
    return {"nodeid": nodeid, "profile": case.profile.name, "confidence": case.profile.confidence,
            "section": dict(case.section), "dataset": dict(case.dataset),
            "base_dir": str(base_dir) if base_dir is not None else None,
            "evaluation": evaluation_stem(case.profile), "fingerprint": dict(fingerprint), "at": time.time()}


def on_disk(run_dir: Path) -> OnDisk:
    """The results of a run's accuracy tests, judged again from `accuracy/cases.jsonl` and the
    evaluations (a test whose evaluation never finished is incomplete)."""
    from ..thresholds import Profile

    accuracy_dir = run_dir / "accuracy"
    lines = JsonLines(accuracy_dir / CASES_FILE)
    found = OnDisk()
    for line in latest_per_test(lines):
        profile = Profile(name=str(line["profile"]), confidence=float(line["confidence"]))
        case = AccuracyCase(profile, dict(line["section"]), dict(line["dataset"]))
        at = float(line.get("at") or 0.0)
        data = read_json_object(accuracy_dir / f"{line['evaluation']}.json")
        if data is None:
            found.incomplete.append(Incomplete("accuracy", str(line["nodeid"]), profile.name, case.name, at=at))
            continue
        base_dir = Path(line["base_dir"]) if line.get("base_dir") else None
        result = judge_dataset(case, Evaluation.from_json(data), base_dir=base_dir)
        found.results.append(Replayed(str(line["nodeid"]), result, dict(line.get("fingerprint") or {}), at))
    found.torn = lines.torn
    return found


def plan_evaluation(profile: "Profile", settings: "Settings", *, work_dir: Path,
                    base_dir: Path | None) -> EvaluationPlan:
    """The profile's `accuracy:` section with the options applied (the option beats the section)."""
    section = profile.accuracy or {}
    results = settings.layered("eval_results", section.get("results"))
    data = settings.layered("eval_data", section.get("data"))
    tokenizer = settings.layered("tokenizer", profile.tokenizer)
    return EvaluationPlan(
        backend=str(settings.layered("eval_backend", section.get("backend"))),
        datasets=dataset_names(section),
        results=resolve_path(str(results), base_dir) if results else None,
        own_endpoint=str(section["endpoint"]) if section.get("endpoint") else None,
        model=settings.layered("model", section.get("model")),
        api=str(settings.layered("api", profile.api)),
        api_key=settings.api_key,
        data_dir=resolve_path(str(data), base_dir) if data else None,
        generation=section.get("generation"),
        tokenizer_path=Path(tokenizer) if tokenizer else None,
        opencompass_python=settings.opencompass_python,
        limit=settings.layered("eval_limit", section.get("limit")),
        work_dir=work_dir,
        tls=settings.tls,
    )


def evaluate_once(profile: "Profile", ctx: "GateContext") -> Evaluation:
    """The profile's evaluation: computed by the first test that asks, read back by the others."""
    accuracy_dir = ctx.folder.path / "accuracy"

    def compute() -> dict[str, Any]:
        plan = plan_evaluation(profile, ctx.settings, work_dir=accuracy_dir / profile.name,
                               base_dir=ctx.thresholds_dir)
        return evaluate(plan, ctx).to_json()

    return Evaluation.from_json(once_per_run(accuracy_dir, evaluation_stem(profile), compute))


def evaluate(plan: EvaluationPlan, ctx: "GateContext") -> Evaluation:
    """Read the plan's results, or evaluate its own endpoint, or the session endpoint (held meanwhile)."""
    from ..endpoint import EndpointSetupError, open_endpoint

    if plan.results is not None:
        return read_evaluation(plan)
    # a backend never outlasts the session's wall limit (--deepseek-session-deadline)
    left_s = None if ctx.session_deadline is None else max(1.0, ctx.session_deadline.left_s())
    if plan.own_endpoint is not None:
        try:
            with open_endpoint(plan.own_endpoint, model=plan.model, api_key=plan.api_key,
                               workdir=plan.work_dir, tls=plan.tls) as endpoint:
                return run_evaluation(plan, endpoint, timeout_s=left_s)
        except EndpointSetupError as exc:
            return Evaluation(error=str(exc), backend=plan.backend)
    if ctx.endpoint is None:
        return Evaluation(error=NO_ENDPOINT, backend=plan.backend)
    with ctx.measuring(ctx.endpoint):
        return run_evaluation(plan, ctx.endpoint, timeout_s=left_s)


def judge_dataset(case: AccuracyCase, evaluation: Evaluation, *, base_dir: Path | None) -> GateResult:
    """The dataset's result: its score judged by the pass rule, or ERROR when the evaluation did not run."""
    if evaluation.error is not None:
        reason = f"the evaluation did not run: {evaluation.error}"
        check = Check(case.name, "error", reason, metric="score")
        return _result(case, evaluation, check, metrics={}, message=f"{case.name}: {reason}", warnings=())
    # The pass rule brings numpy: imported when a dataset is judged, not when cases are listed.
    from .records import ScoreRecord
    from .rule import judge

    raw = evaluation.records.get(case.name)
    record = ScoreRecord.from_dict(raw) if raw is not None else None
    judged = judge({"confidence": case.profile.confidence, **case.dataset}, record, base_dir=base_dir)
    reason, message = judged.reason, judged.message
    if record is None and evaluation.records:
        available = f" (datasets in the results: {', '.join(sorted(evaluation.records))})"
        reason, message = reason + available, message + available
    metrics = _metrics(case, judged, raw)
    return _result(case, evaluation, _check(case, judged, reason, metrics), metrics=metrics, message=message,
                   warnings=judged.warnings)


def _metrics(case: AccuracyCase, judged: "AccuracyCheck", raw: Mapping[str, Any] | None) -> dict[str, Any]:
    metrics = dict(judged.metrics)
    if raw is not None:
        metrics.setdefault("metric", raw.get("metric"))
        metrics.setdefault("native_name", raw.get("native_name"))
    if case.dataset.get("reference") is not None:
        metrics.setdefault("reference", case.dataset.get("reference"))
    return metrics


def _check(case: AccuracyCase, judged: "AccuracyCheck", reason: str, metrics: Mapping[str, Any]) -> Check:
    """The score against `min:` (or against `reference:`, less the tolerance), with its interval."""
    floor = case.dataset.get("min")
    interval = metrics.get("interval") or (None, None)
    return Check(
        case.name, judged.verdict, reason, metric="score",
        op=">=" if floor is not None else ">= reference -",
        threshold=floor if floor is not None else case.dataset.get("reference"),
        value=judged.value, low=interval[0], high=interval[1],
    )


def _result(case: AccuracyCase, evaluation: Evaluation, check: Check, *, metrics: Mapping[str, Any],
            message: str, warnings: Sequence[str]) -> GateResult:
    score = metrics.get("score")
    return GateResult.decide(
        "accuracy", case.profile.name, case.name, [check],
        metrics=metrics, figures={"score": score} if score is not None else {},
        simulated=evaluation.simulated, warnings=tuple(warnings),
        locations={"results_dir": evaluation.results_dir, "log": evaluation.results_dir},
        fingerprint={"backend": evaluation.backend, "evaluated_endpoint": evaluation.endpoint,
                     "dataset_version": metrics.get("config_version")},
        details={"dataset": case.name, "backend": evaluation.backend, "example": bool(case.section.get("example")),
                 "message": message},
    )
