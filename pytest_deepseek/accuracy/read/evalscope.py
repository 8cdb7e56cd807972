"""Read an evalscope work dir: `reports/<model>/<benchmark>.json`, `reviews/`, `configs/task_config.yaml`.

Report scores are fractions; the metric to read is the one whose identity equals
`primary_metric_identity`. `execution_summary` says how many items were requested, succeeded and
errored: with `ignore_errors=True` an errored item is dropped from the score, so a report can show
a higher score than the run deserves; the record keeps `errored` and `incomplete` so the gate fails.
A `general_mcq` report yields one record per subset (CLUEWSC lives there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .. import names
from ..records import ItemResult, ScoreRecord
from ..spec import EVALSCOPE as BACKEND
from .common import ResultsError, average_items, latest, percent, read_json, read_jsonl


def find_run(folder: Path) -> Path | None:
    """The evalscope run dir in `folder`: itself, or its latest timestamped child with `reports/`."""
    if _reports(folder):
        return folder
    return latest(p for p in folder.iterdir() if p.is_dir() and _reports(p)) if folder.is_dir() else None


def _reports(folder: Path) -> list[Path]:
    return [p for p in folder.glob("reports/*/*.json") if p.is_file()]


def read(folder: Path) -> list[ScoreRecord]:
    """Score records of an evalscope run dir (or a folder holding timestamped runs)."""
    run = find_run(folder)
    if run is None:
        raise ResultsError(f"no evalscope reports/<model>/<dataset>.json under {folder}")
    config = _task_config(run)
    records: list[ScoreRecord] = []
    for report_path in sorted(_reports(run)):
        report = read_json(report_path)
        if not isinstance(report, dict) or "metrics" not in report:
            continue
        records.extend(_records(report, report_path, config))
    return records


def _task_config(run: Path) -> dict[str, Any]:
    path = run / "configs" / "task_config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _primary_metric(report: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The metric entry matching `primary_metric_identity`, or a reason why there is none."""
    identity = report.get("primary_metric_identity")
    if identity is None:
        reason = report.get("primary_metric_unavailable_reason") or "no primary_metric_identity"
        return None, f"evalscope gives no primary metric: {reason}"
    for metric in report.get("metrics", []):
        if metric.get("identity") == identity:
            return metric, None
    return None, f"no metric matches primary_metric_identity {identity}"


def _records(report: dict[str, Any], path: Path, config: dict[str, Any]) -> list[ScoreRecord]:
    benchmark = str(report.get("dataset_name") or path.stem)
    model = path.parent.name
    run = path.parents[2]
    metric, problem = _primary_metric(report)
    summary = report.get("execution_summary") or {}
    identity = ((config.get("evaluation_identity") or {}).get("benchmarks") or {}).get(benchmark) or {}
    repeats = int(config.get("repeats") or 1)
    common: dict[str, Any] = {
        "backend": BACKEND,
        "repeats": repeats,
        "config_version": identity.get("evaluation_version"),
        "config_hash": identity.get("fingerprint"),
        "backend_version": config.get("evalscope_version"),
        "source": str(path),
    }
    metric_name = str((metric or {}).get("identity", {}).get("name") or "accuracy")
    if benchmark == "general_mcq" and metric is not None:
        return [
            _subset_record(benchmark, subset, metric, metric_name, summary, run, model, common)
            for subset in _subsets(metric)
        ]
    errored = int(summary.get("errored") or 0)
    requested = summary.get("requested")
    succeeded = summary.get("succeeded")
    incomplete = bool(summary.get("incomplete")) or (
        requested is not None and succeeded is not None and succeeded < requested
    )
    items = _items(run, model, benchmark, None, metric_name)
    score = None if metric is None else percent(float(metric["score"]))
    return [
        ScoreRecord(
            dataset=names.from_evalscope(benchmark),
            native_name=benchmark,
            metric=metric_name,
            score=score,
            n=_distinct(items, (metric or {}).get("num"), repeats),
            errored=errored,
            incomplete=incomplete,
            requested=None if requested is None else _per_item(int(requested), repeats),
            items=items,
            problems=() if problem is None else (problem,),
            **common,
        )
    ]


def _subsets(metric: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for cat in metric.get("categories", []) for s in cat.get("subsets", []) if not s.get("is_aggregate")]


def _subset_record(
    benchmark: str,
    subset: dict[str, Any],
    metric: dict[str, Any],
    metric_name: str,
    summary: dict[str, Any],
    run: Path,
    model: str,
    common: dict[str, Any],
) -> ScoreRecord:
    name = str(subset["name"])
    counts = (summary.get("subsets") or {}).get(name) or {}
    requested = counts.get("requested")
    succeeded = counts.get("succeeded")
    incomplete = requested is not None and succeeded is not None and succeeded < requested
    items = _items(run, model, benchmark, name, metric_name)
    repeats = int(common["repeats"])
    return ScoreRecord(
        dataset=names.from_evalscope(benchmark, name),
        native_name=f"{benchmark}/{name}",
        metric=metric_name,
        score=percent(float(subset["score"])),
        n=_distinct(items, subset.get("num"), repeats),
        errored=int(counts.get("errored") or 0),
        incomplete=bool(incomplete),
        requested=None if requested is None else _per_item(int(requested), repeats),
        items=items,
        **common,
    )


def _per_item(count: int, repeats: int) -> int:
    return count // repeats if repeats > 1 and count % repeats == 0 else count


def _distinct(items: tuple[ItemResult, ...] | None, num: Any, repeats: int) -> int | None:
    if items is not None:
        return len(items)
    return None if num is None else _per_item(int(num), repeats)


def _items(run: Path, model: str, benchmark: str, subset: str | None, metric: str) -> tuple[ItemResult, ...] | None:
    """Per-item scores from `reviews/<model>/<benchmark>_<subset>.jsonl`, repeats averaged."""
    folder = run / "reviews" / model
    pattern = f"{benchmark}_{subset}.jsonl" if subset is not None else f"{benchmark}_*.jsonl"
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not files:
        return None
    pairs = []
    for file in files:
        file_subset = file.stem[len(benchmark) + 1 :]
        for row in read_jsonl(file):
            sample = row.get("sample_score") or {}
            score = sample.get("score") or {}
            value = (score.get("value") or {}).get(metric)
            sample_id = sample.get("group_id", sample.get("sample_id", row.get("index")))
            errored = score.get("status", "success") != "success"
            pairs.append((f"{file_subset}/{sample_id}", float(value or 0.0), errored))
    return average_items(pairs)
