"""Read an lm-eval output folder: `<model>/results_<ts>.json` and `samples_<task>_<ts>.jsonl`.

Scores are fractions under `"<metric>,<filter>"` keys next to `"<metric>_stderr,<filter>"`. The metric
read is the task's first configured metric under its first filter (`none` when it has no filter).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import names
from ..records import ItemResult, ScoreRecord
from ..spec import LM_EVAL as BACKEND
from .common import ResultsError, average_items, latest, percent, read_json, read_jsonl

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
    groups = set((data.get("group_subtasks") or {}).keys())
    records = []
    for task, values in data["results"].items():
        config = (data.get("configs") or {}).get(task)
        if config is None and task in groups:
            continue
        records.append(_record(task, values, config or {}, data, path, stamp))
    return records


def _metric_key(task: str, values: dict[str, Any], config: dict[str, Any]) -> tuple[str, str] | None:
    metrics = [str(m.get("metric")) for m in config.get("metric_list") or [] if isinstance(m, dict)]
    filters = [str(f.get("name")) for f in config.get("filter_list") or [] if isinstance(f, dict)] or ["none"]
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
    common: dict[str, Any] = {
        "dataset": names.from_lm_eval(task),
        "native_name": task,
        "backend": BACKEND,
        "repeats": int(config.get("repeats") or 1),
        "config_version": None if task not in (data.get("versions") or {}) else str(data["versions"][task]),
        "config_hash": (data.get("task_hashes") or {}).get(task),
        "backend_version": data.get("lm_eval_version"),
        "source": str(path),
    }
    key = _metric_key(task, values, config)
    if key is None:
        return ScoreRecord(metric="?", score=None, n=None, problems=(f"no score for task {task}",), **common)
    metric, filt = key
    counts = (data.get("n-samples") or {}).get(task) or {}
    n = counts.get("effective", values.get("sample_len"))
    items, empty = _items(path.parent / f"samples_{task}_{stamp}.jsonl", metric, filt)
    stderr = values.get(f"{metric}_stderr,{filt}")
    notes = [] if not isinstance(stderr, (int, float)) else [f"lm-eval stderr {percent(stderr):.2f} points"]
    if empty:
        notes.append(f"{empty} response(s) had no content (scored wrong; reasoning cut off by max_tokens?)")
    return ScoreRecord(
        metric=f"{metric},{filt}",
        score=percent(float(values[f"{metric},{filt}"])),
        n=None if n is None else int(n),
        requested=None if n is None else int(n),
        items=items,
        notes=tuple(notes),
        **common,
    )


def _items(path: Path, metric: str, filt: str) -> tuple[tuple[ItemResult, ...] | None, int]:
    """Per-item scores from the samples file, and how many responses were empty."""
    if not path.is_file():
        return None, 0
    pairs = []
    empty = 0
    for row in read_jsonl(path):
        if row.get("filter", filt) != filt or metric not in row:
            continue
        responses = [r for group in row.get("resps") or [] for r in (group if isinstance(group, list) else [group])]
        empty += sum(1 for r in responses if r == NONE_ANSWER)
        pairs.append((str(row.get("doc_id")), float(row[metric]), False))
    return (average_items(pairs) if pairs else None), empty
