"""Read an evalscope work dir: `reports/<model>/<benchmark>.json`, `reviews/`, `configs/task_config.yaml`.

Report scores are fractions; the metric to read is the one whose identity equals
`primary_metric_identity`. `execution_summary` says how many items were requested, succeeded and
errored: with `ignore_errors=True` an errored item is dropped from the score, so a report can show
a higher score than the run deserves; the record keeps `errored` and `incomplete` so the gate fails.
A `general_mcq` report yields one record per subset (CLUEWSC lives there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .. import names
from ..records import ItemResult, ScoreRecord
from ..spec import EVALSCOPE as BACKEND
from .common import (
    ResultsError,
    as_count,
    as_label,
    as_list,
    as_mapping,
    as_number,
    average_items,
    dig,
    latest,
    percent,
    read_json,
    read_jsonl,
    read_text,
)


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
    path = _config_path(run)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:  # a value YAML resolves but Python cannot build, such as the date 2020-13-45
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    except RecursionError as exc:
        raise ResultsError(f"cannot read {path}: collections nested too deeply") from exc
    return data if isinstance(data, dict) else {}


def _config_path(run: Path) -> Path:
    return run / "configs" / "task_config.yaml"


def _primary_metric(report: dict[str, Any], path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The metric entry matching `primary_metric_identity`, or a reason why there is none."""
    identity = report.get("primary_metric_identity")
    if identity is None:
        reason = report.get("primary_metric_unavailable_reason") or "no primary_metric_identity"
        return None, f"evalscope gives no primary metric: {reason}"
    for index, metric in enumerate(as_list(report.get("metrics"), f"{path}: metrics")):
        metric = as_mapping(metric, f"{path}: metrics[{index}]")
        if metric.get("identity") == identity:
            return metric, None
    return None, f"no metric matches primary_metric_identity {identity}"


def _records(report: dict[str, Any], path: Path, config: dict[str, Any]) -> list[ScoreRecord]:
    benchmark = as_label(report.get("dataset_name"), f"{path}: dataset_name") or path.stem
    model = path.parent.name
    run = path.parents[2]
    metric, problem = _primary_metric(report, path)
    summary = as_mapping(report.get("execution_summary"), f"{path}: execution_summary")
    identity = dig(config, "evaluation_identity", "benchmarks", benchmark)
    identity_where = f"{_config_path(run)}: evaluation_identity.benchmarks.{benchmark}"
    repeats = as_count(config.get("repeats"), f"{_config_path(run)}: repeats") or 1
    common: dict[str, Any] = {
        "backend": BACKEND,
        "repeats": repeats,
        "config_version": as_label(dig(identity, "evaluation_version"), f"{identity_where}.evaluation_version"),
        "config_hash": as_label(dig(identity, "fingerprint"), f"{identity_where}.fingerprint"),
        "backend_version": as_label(config.get("evalscope_version"), f"{_config_path(run)}: evalscope_version"),
        "source": str(path),
    }
    metric_name = as_label(dig(metric, "identity", "name"), f"{path}: metrics.identity.name") or "accuracy"
    if benchmark == "general_mcq" and metric is not None:
        return [
            _subset_record(benchmark, subset, metric_name, summary, path, model, common)
            for subset in _subsets(metric, path)
        ]
    counts = _Counts.of(summary, f"{path}: execution_summary")
    items = _items(run, model, benchmark, None, metric_name)
    score = None if metric is None else percent(as_number(metric.get("score"), f"{path}: primary metric score"))
    return [
        ScoreRecord(
            dataset=names.from_evalscope(benchmark),
            native_name=benchmark,
            metric=metric_name,
            score=score,
            n=_distinct(items, as_count(dig(metric, "num"), f"{path}: primary metric num"), repeats),
            errored=counts.errored,
            incomplete=bool(summary.get("incomplete")) or counts.incomplete,
            requested=None if counts.requested is None else _per_item(counts.requested, repeats),
            items=items,
            problems=() if problem is None else (problem,),
            **common,
        )
    ]


class _Counts(NamedTuple):
    """What `execution_summary` (or one of its subsets) says of the items: requested, errored, finished."""

    requested: int | None
    errored: int
    incomplete: bool

    @classmethod
    def of(cls, summary: dict[str, Any], where: str) -> _Counts:
        requested = as_count(summary.get("requested"), f"{where}.requested")
        succeeded = as_count(summary.get("succeeded"), f"{where}.succeeded")
        errored = as_count(summary.get("errored"), f"{where}.errored") or 0
        return cls(requested, errored, requested is not None and succeeded is not None and succeeded < requested)


def _subsets(metric: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    subsets = []
    for i, category in enumerate(as_list(metric.get("categories"), f"{path}: categories")):
        where = f"{path}: categories[{i}]"
        for j, subset in enumerate(as_list(as_mapping(category, where).get("subsets"), f"{where}.subsets")):
            subset = as_mapping(subset, f"{where}.subsets[{j}]")
            if not subset.get("is_aggregate"):
                subsets.append(subset)
    return subsets


def _subset_record(
    benchmark: str,
    subset: dict[str, Any],
    metric_name: str,
    summary: dict[str, Any],
    path: Path,
    model: str,
    common: dict[str, Any],
) -> ScoreRecord:
    name = as_label(subset.get("name"), f"{path}: subset name")
    if name is None:
        raise ResultsError(f"{path}: a subset without a name")
    where = f"{path}: execution_summary.subsets.{name}"
    counts = _Counts.of(as_mapping(dig(summary, "subsets", name), where), where)
    items = _items(path.parents[2], model, benchmark, name, metric_name)
    repeats = int(common["repeats"])
    return ScoreRecord(
        dataset=names.from_evalscope(benchmark, name),
        native_name=f"{benchmark}/{name}",
        metric=metric_name,
        score=percent(as_number(subset.get("score"), f"{path}: subset {name} score")),
        n=_distinct(items, as_count(subset.get("num"), f"{path}: subset {name} num"), repeats),
        errored=counts.errored,
        incomplete=counts.incomplete,
        requested=None if counts.requested is None else _per_item(counts.requested, repeats),
        items=items,
        **common,
    )


def _per_item(count: int, repeats: int) -> int:
    return count // repeats if repeats > 1 and count % repeats == 0 else count


def _distinct(items: tuple[ItemResult, ...] | None, num: int | None, repeats: int) -> int | None:
    if items is not None:
        return len(items)
    return None if num is None else _per_item(num, repeats)


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
        for where, row in read_jsonl(file):
            sample = as_mapping(row.get("sample_score"), f"{where}: sample_score")
            score = as_mapping(sample.get("score"), f"{where}: sample_score.score")
            value = as_mapping(score.get("value"), f"{where}: sample_score.score.value").get(metric)
            sample_id = sample.get("group_id", sample.get("sample_id", row.get("index")))
            errored = score.get("status", "success") != "success"
            item_score = as_number(value or 0.0, f"{where}: score of {metric}")
            pairs.append((f"{file_subset}/{sample_id}", item_score, errored))
    return average_items(pairs)
