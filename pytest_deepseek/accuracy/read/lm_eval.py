"""Read an lm-eval output folder: `<model>/results_<ts>.json` and `samples_<task>_<ts>.jsonl`.

Scores are fractions under `"<metric>,<filter>"` keys next to `"<metric>_stderr,<filter>"`. The metric
read is the task's first configured metric under its first filter (`none` when it has no filter).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .. import names
from ..records import ItemResult, ScoreRecord
from ..spec import LM_EVAL as BACKEND
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
)

# lm-eval writes this (default: empty) in place of an answer when the server returned null content.
NONE_ANSWER = os.environ.get("LMEVAL_MODEL_NONE_ANSWER_PLACEHOLDER", "")


def find_results(folder: Path) -> Path | None:
    """The results JSON: `folder` itself if a file, else the latest `results_*.json` one or two levels down."""
    if folder.is_file():
        return folder
    if not folder.is_dir():
        return None
    found = list(folder.glob("results_*.json")) + list(folder.glob("*/results_*.json"))
    return latest(found)


def read(folder: Path) -> list[ScoreRecord]:
    """Score records of an lm-eval `--output_path` folder (or one results JSON)."""
    path = find_results(folder)
    if path is None:
        raise ResultsError(f"no lm-eval results_<timestamp>.json under {folder}")
    data = read_json(path)
    if not isinstance(data, dict) or "results" not in data:
        raise ResultsError(f"{path}: not an lm-eval results file")
    stamp = path.stem[len("results_") :]
    groups = set(as_mapping(data.get("group_subtasks"), f"{path}: group_subtasks"))
    configs = as_mapping(data.get("configs"), f"{path}: configs")
    records = []
    for task, values in as_mapping(data["results"], f"{path}: results").items():
        config = configs.get(task)
        if config is None and task in groups:
            continue
        records.append(_record(task, as_mapping(values, f"{path}: results.{task}"),
                               as_mapping(config, f"{path}: configs.{task}"), data, path, stamp))
    return records


def _metric_key(task: str, values: dict[str, Any], config: dict[str, Any], path: Path) -> tuple[str, str] | None:
    where = f"{path}: configs.{task}"
    metrics = [str(m.get("metric")) for m in as_list(config.get("metric_list"), f"{where}.metric_list")
               if isinstance(m, dict)]
    filters = [str(f.get("name")) for f in as_list(config.get("filter_list"), f"{where}.filter_list")
               if isinstance(f, dict)] or ["none"]
    for metric in metrics:
        for filt in filters:
            if f"{metric},{filt}" in values:
                return metric, filt
    for key, value in values.items():
        if "," in key and "_stderr" not in key and isinstance(value, (int, float)):
            metric, filt = key.split(",", 1)
            return metric, filt
    return None


def _record(
    task: str, values: dict[str, Any], config: dict[str, Any], data: dict[str, Any], path: Path, stamp: str
) -> ScoreRecord:
    versions = as_mapping(data.get("versions"), f"{path}: versions")
    common: dict[str, Any] = {
        "dataset": names.from_lm_eval(task),
        "native_name": task,
        "backend": BACKEND,
        "repeats": as_count(config.get("repeats"), f"{path}: configs.{task}.repeats") or 1,
        "config_version": as_label(versions.get(task), f"{path}: versions.{task}"),
        "config_hash": as_label(dig(data, "task_hashes", task), f"{path}: task_hashes.{task}"),
        "backend_version": as_label(data.get("lm_eval_version"), f"{path}: lm_eval_version"),
        "source": str(path),
    }
    key = _metric_key(task, values, config, path)
    if key is None:
        return ScoreRecord(metric="?", score=None, n=None, problems=(f"no score for task {task}",), **common)
    metric, filt = key
    counts = as_mapping(dig(data, "n-samples", task), f"{path}: n-samples.{task}")
    n = as_count(counts.get("effective", values.get("sample_len")), f"{path}: n-samples.{task}.effective")
    items, empty = _items(path.parent / f"samples_{task}_{stamp}.jsonl", metric, filt)
    stderr = values.get(f"{metric}_stderr,{filt}")
    notes = [] if not _finite(stderr) else [f"lm-eval stderr {percent(stderr):.2f} points"]
    if empty:
        notes.append(f"{empty} response(s) had no content (scored wrong; reasoning cut off by max_tokens?)")
    return ScoreRecord(
        metric=f"{metric},{filt}",
        score=percent(as_number(values[f"{metric},{filt}"], f"{path}: results.{task}.{metric},{filt}")),
        n=n,
        requested=n,
        items=items,
        notes=tuple(notes),
        **common,
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _items(path: Path, metric: str, filt: str) -> tuple[tuple[ItemResult, ...] | None, int]:
    """Per-item scores from the samples file, and how many responses were empty."""
    if not path.is_file():
        return None, 0
    pairs = []
    empty = 0
    for where, row in read_jsonl(path):
        if row.get("filter", filt) != filt or metric not in row:
            continue
        resps = row.get("resps") or []
        groups = resps if isinstance(resps, list) else [resps]
        responses = [r for group in groups for r in (group if isinstance(group, list) else [group])]
        empty += sum(1 for r in responses if r == NONE_ANSWER)
        pairs.append((str(row.get("doc_id")), as_number(row[metric], f"{where}: {metric}"), False))
    return (average_items(pairs) if pairs else None), empty
