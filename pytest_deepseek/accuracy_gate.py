"""The accuracy gate's glue: get score records for a profile (run a backend or read results), judge.

One evaluation per profile and run covers all of its datasets; the dataset tests share it (and
xdist workers share it through a locked JSON file in the results folder). The evaluation runs
against the session endpoint, or against the `accuracy.endpoint:` of the profile (a `sim://` URL
there starts its own simulator, e.g. one answering from the bundled answer key).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import resolve_path as shared_resolve
from .report.once import once_per_run
from .report.store import RunFolder, safe_name

def resolve_path(value: str | None, base_dir: Path | None) -> Path | None:
    """A path from the thresholds file (see `paths.resolve_path`), or None."""
    return shared_resolve(value, base_dir) if value else None


@dataclass
class Evaluation:
    """Score records of one profile's evaluation (plain JSON), or the error that prevented it."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset name -> ScoreRecord.to_dict()
    results_dir: str | None = None
    backend: str | None = None
    error: str | None = None
    endpoint: str | None = None
    simulated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "results_dir": self.results_dir, "backend": self.backend,
                "error": self.error, "endpoint": self.endpoint, "simulated": self.simulated}


def _records_by_name(folder: Path, backend: str | None) -> dict[str, dict[str, Any]]:
    from .accuracy import read_results

    return {record.dataset: record.to_dict() for record in read_results(folder, backend=backend)}


def evaluate_profile(
    section: Mapping[str, Any],
    *,
    results_override: str | None,
    backend_override: str | None,
    endpoint: tuple[str, str, bool] | None,  # (base_url, model, simulated) of the session endpoint
    model: str | None,  # --deepseek-model or accuracy.model: the model its own endpoint must grade (None: its first)
    api: str,
    api_key: str | None,
    data_dir: str | None,
    opencompass_python: str | None,
    limit: int | None,
    tokenizer_path: str | None,
    work_dir: Path,
    base_dir: Path | None,
) -> Evaluation:
    """Read existing results, or run the backend against the endpoint, for one `accuracy:` section."""
    from .accuracy import BackendError, BackendMissing, ResultsError, run_backend

    backend = backend_override or section.get("backend")
    results = results_override or section.get("results")
    if results:
        folder = resolve_path(results, base_dir)
        try:
            return Evaluation(records=_records_by_name(folder, None), results_dir=str(folder), backend=backend)
        except ResultsError as exc:
            return Evaluation(error=str(exc), results_dir=str(folder), backend=backend)
    sim = None
    try:
        own_endpoint = section.get("endpoint")
        if own_endpoint:
            from .endpoint import SimHandle, probe_endpoint

            if str(own_endpoint).startswith("sim://"):
                sim = SimHandle(str(own_endpoint), work_dir / "sim")
                info = probe_endpoint(sim.base_url, model=model, api_key=api_key, simulated=True)
            else:
                info = probe_endpoint(str(own_endpoint), model=model, api_key=api_key)
            endpoint = (info.base_url, info.model, info.simulated)
        if endpoint is None:
            return Evaluation(error="no endpoint to evaluate: pass --endpoint=URL, or --deepseek-eval-results=DIR to judge "
                                    "an earlier evaluation", backend=backend)
        base_url, model, simulated = endpoint
        names = [str(d["name"]) for d in section.get("datasets", [])]
        folder = run_backend(
            str(backend), base_url=base_url, model=model, api=api, api_key=api_key, datasets=names,
            data_dir=resolve_path(data_dir or section.get("data"), base_dir), work_dir=work_dir,
            generation=section.get("generation"), tokenizer_path=Path(tokenizer_path) if tokenizer_path else None,
            opencompass_python=opencompass_python, limit=limit or section.get("limit"),
        )
        return Evaluation(records=_records_by_name(folder, str(backend)), results_dir=str(folder), backend=backend,
                          endpoint=base_url, simulated=simulated)
    except (BackendMissing, BackendError, ResultsError) as exc:
        return Evaluation(error=str(exc), backend=backend)
    except Exception as exc:  # an endpoint that cannot be started or probed
        from .endpoint import EndpointSetupError

        if isinstance(exc, EndpointSetupError):
            return Evaluation(error=str(exc), backend=backend)
        raise
    finally:
        if sim is not None:
            sim.stop()


def evaluate_once(folder: RunFolder, profile: str, run: Callable[[], Evaluation]) -> Evaluation:
    """One evaluation per profile and run, shared across tests and processes."""
    data = once_per_run(folder.path / "accuracy", safe_name(profile), lambda: run().to_json())
    return Evaluation(**data)


def judge_dataset(entry: Mapping[str, Any], evaluation: Evaluation, *, confidence: float,
                  base_dir: Path | None) -> dict[str, Any]:
    """The summary.json entry parts for one dataset: metrics, checks, verdict, message."""
    from .accuracy import ScoreRecord, judge

    name = str(entry["name"])
    if evaluation.error is not None:
        message = f"{name}: the evaluation did not run: {evaluation.error}"
        return {"metrics": {}, "checks": [{"name": name, "metric": "score", "verdict": "error", "message": message}],
                "verdict": "error", "message": message, "warnings": []}
    raw = evaluation.records.get(name)
    record = ScoreRecord.from_dict(raw) if raw is not None else None
    merged = {"confidence": confidence, **entry}
    check = judge(merged, record, base_dir=base_dir)
    op = ">=" if entry.get("min") is not None else ">= reference -"
    threshold = entry.get("min") if entry.get("min") is not None else entry.get("reference")
    if record is None and evaluation.records:
        available = ", ".join(sorted(evaluation.records))
        message = f"{check.message} (datasets in the results: {available})"
    else:
        message = check.message
    metrics = dict(check.metrics)
    if raw is not None:
        metrics.setdefault("metric", raw.get("metric"))
        metrics.setdefault("native_name", raw.get("native_name"))
    if entry.get("reference") is not None:
        metrics.setdefault("reference", entry.get("reference"))
    return {
        "metrics": metrics,
        "checks": [{"name": name, "metric": "score", "op": op, "threshold": threshold, "value": check.value,
                    "verdict": check.verdict, "message": message}],
        "verdict": check.verdict,
        "message": message,
        "warnings": list(check.warnings),
    }


def failure_text(result: Mapping[str, Any]) -> str:
    """Expected vs measured, the gap in items, warnings, and where the tool's results are."""
    lines = [f"{str(result['verdict']).upper()}: accuracy {result['profile']} {result['dataset']}"
             + (" [SIMULATED]" if result.get("simulated") else "")]
    lines.append(f"  {result['message']}")
    for warning in result.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    lines.append(f"  results: {result.get('results_dir') or '-'}")
    return "\n".join(lines)
