"""One profile's evaluation: read an earlier results folder, or run the backend against an endpoint.

The outcome is plain JSON (`Evaluation`), so one evaluation can be shared by the dataset tests of
a profile across processes. A backend that is missing or fails, results that cannot be read and an
endpoint that cannot be opened all end as an `Evaluation` carrying the error: the datasets are then
judged ERROR, never passed or skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fingerprint import redacted_url
from ..tls import SYSTEM, TlsPolicy

if TYPE_CHECKING:
    from ..credentials import KeyLike
    from ..endpoint import EndpointInfo


@dataclass(frozen=True)
class EvaluationPlan:
    """What one `accuracy:` section asks for, with the options applied and paths resolved."""

    backend: str
    datasets: tuple[str, ...]
    results: Path | None  # judge this folder instead of evaluating
    own_endpoint: str | None  # the section's `endpoint:` (None: the session's endpoint)
    model: str | None  # the model its own endpoint must serve (None: the endpoint's first)
    api: str
    api_key: "KeyLike" = field(repr=False)
    data_dir: Path | None
    generation: Mapping[str, Any] | None
    tokenizer_path: Path | None
    opencompass_python: str | None
    limit: int | None
    work_dir: Path
    tls: TlsPolicy = SYSTEM  # for its own endpoint (the session's endpoint keeps the one it was opened with)


@dataclass(frozen=True)
class Evaluation:
    """Score records of one profile's evaluation (plain JSON), or the error that prevented it."""

    records: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> ScoreRecord.to_dict()
    results_dir: str | None = None
    backend: str | None = None
    error: str | None = None
    endpoint: str | None = None
    simulated: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, for the file the tests of one profile share."""
        data = asdict(self)
        data["records"] = dict(self.records)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Evaluation":
        """Inverse of `to_json`."""
        return cls(**data)


def read_evaluation(plan: EvaluationPlan) -> Evaluation:
    """The score records of the results folder the plan names (any backend's layout)."""
    from .read import ResultsError

    assert plan.results is not None
    try:
        records = _records_by_dataset(plan.results, None)
    except ResultsError as exc:
        return Evaluation(error=str(exc), results_dir=str(plan.results), backend=plan.backend)
    return Evaluation(records=records, results_dir=str(plan.results), backend=plan.backend)


def run_evaluation(plan: EvaluationPlan, endpoint: "EndpointInfo", timeout_s: float | None = None) -> Evaluation:
    """Evaluate the plan's datasets on `endpoint` with its backend and read what the backend wrote;
    a backend still running after `timeout_s` is stopped (an error saying so)."""
    from .generation import GenerationError
    from .read import ResultsError
    from .run import BackendError, run_backend

    try:
        folder = run_backend(
            plan.backend, base_url=endpoint.base_url, model=endpoint.model, api=plan.api, api_key=plan.api_key,
            datasets=plan.datasets, data_dir=plan.data_dir, work_dir=plan.work_dir, generation=plan.generation,
            tokenizer_path=plan.tokenizer_path, opencompass_python=plan.opencompass_python, limit=plan.limit,
            timeout_s=timeout_s, tls=endpoint.tls,
        )
        records = _records_by_dataset(folder, plan.backend)
    except (BackendError, ResultsError, GenerationError) as exc:  # BackendMissing is a BackendError
        return Evaluation(error=str(exc), backend=plan.backend)
    return Evaluation(records=records, results_dir=str(folder), backend=plan.backend,
                      endpoint=redacted_url(endpoint.base_url), simulated=endpoint.simulated)


def _records_by_dataset(folder: Path, backend: str | None) -> dict[str, dict[str, Any]]:
    from .read import read_results

    return {record.dataset: record.to_dict() for record in read_results(folder, backend=backend)}


def dataset_names(section: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of an `accuracy:` section's datasets, in order."""
    entries: Sequence[Mapping[str, Any]] = section.get("datasets") or ()
    return tuple(str(entry["name"]) for entry in entries)
