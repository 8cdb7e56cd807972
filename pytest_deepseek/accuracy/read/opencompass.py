"""Read an OpenCompass work dir: `<ts>/summary/summary_<ts>.csv`, latest by default.

The CSV is `dataset,version,metric,mode,<model>` with percent to two decimals; a set whose evaluation
failed prints `-`. Item counts and per-item results come from `results/<model>/<abbr>.json`
(`details`), falling back to `predictions/<model>/<abbr>.json`. MMLU subjects
(`lukaemon_mmlu_*`) are folded into one `mmlu` record weighted by items.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import names
from ..records import ItemResult, ScoreRecord
from ..spec import MMLU
from ..spec import OPENCOMPASS as BACKEND
from .common import ResultsError, as_mapping, latest, read_json

FAILED = "-"


@dataclass(frozen=True)
class _Row:
    abbr: str
    version: str
    metric: str
    value: str


def find_summary(folder: Path) -> Path | None:
    """The summary CSV: `folder` itself if a CSV, else the latest `summary_*.csv` of the latest run."""
    if folder.is_file() and folder.suffix == ".csv":
        return folder
    if not folder.is_dir():
        return None
    here = latest(folder.glob("summary/summary_*.csv"))
    if here is not None:
        return here
    runs = [p for p in folder.iterdir() if p.is_dir() and any(p.glob("summary/summary_*.csv"))]
    run = latest(runs)
    return None if run is None else latest(run.glob("summary/summary_*.csv"))


def read(folder: Path) -> list[ScoreRecord]:
    """Score records from an OpenCompass work dir, a run dir, or one summary CSV."""
    summary = find_summary(folder)
    if summary is None:
        raise ResultsError(f"no OpenCompass summary/summary_<timestamp>.csv under {folder}")
    run = summary.parent.parent
    model, rows = _parse_csv(summary)
    records: list[ScoreRecord] = []
    mmlu = [r for r in rows if r.abbr.startswith(names.MMLU_PREFIX)]
    for row in rows:
        if row.abbr.startswith(names.MMLU_PREFIX) or (row.abbr == MMLU and mmlu):
            continue
        records.append(_record(row, run, model, summary))
    if mmlu:
        records.append(_fold_mmlu([_record(r, run, model, summary) for r in mmlu], summary))
    return records


def _parse_csv(path: Path) -> tuple[str, list[_Row]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            table = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    if not table or table[0][:4] != ["dataset", "version", "metric", "mode"] or len(table[0]) < 5:
        raise ResultsError(f"{path}: not an OpenCompass summary (header {table[0] if table else 'missing'})")
    # One column per model; the gate evaluates one model, the first column.
    model = table[0][4]
    rows = [_Row(r[0], r[1], r[2], r[4].strip()) for r in table[1:] if len(r) >= 5 and r[0]]
    return model, rows


def _record(row: _Row, run: Path, model: str, summary: Path) -> ScoreRecord:
    common: dict[str, Any] = {
        "dataset": names.from_opencompass(row.abbr),
        "native_name": row.abbr,
        "backend": BACKEND,
        "source": str(summary),
    }
    if row.value == FAILED:
        return ScoreRecord(
            metric=row.metric if row.metric != FAILED else "accuracy",
            score=None,
            n=None,
            incomplete=True,
            problems=(f"OpenCompass printed '-' for {row.abbr}: its evaluation failed (see {run / 'logs'})",),
            **common,
        )
    try:
        score = float(row.value)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        problem = f"unreadable score {row.value!r}"
        return ScoreRecord(metric=row.metric, score=None, n=None, problems=(problem,), **common)
    items = _items(run, model, row.abbr, score)
    n = len(items) if items is not None else _count_predictions(run, model, row.abbr)
    return ScoreRecord(
        metric=row.metric,
        score=score,
        n=n,
        requested=n,
        items=items,
        config_version=row.version,
        **common,
    )


def _items(run: Path, model: str, abbr: str, score: float) -> tuple[ItemResult, ...] | None:
    """Per-item results from `details`; dropped when they do not reproduce the summary's score."""
    path = run / "results" / model / f"{abbr}.json"
    if not path.is_file():
        return None
    details = as_mapping(read_json(path), str(path)).get("details")
    if isinstance(details, dict):
        entries = [(k, v) for k, v in details.items() if k != "type" and isinstance(v, dict)]
    elif isinstance(details, list):
        entries = [(str(d.get("example_abbr", i)), d) for i, d in enumerate(details) if isinstance(d, dict)]
    else:
        return None
    items = []
    for key, detail in entries:
        correct = _correct(detail)
        if correct is None:
            return None
        items.append(ItemResult(f"{abbr}/{key}", correct))
    if not items or abs(100.0 * sum(i.score for i in items) / len(items) - score) > 0.01:
        return None
    return tuple(items)


def _correct(detail: dict[str, Any]) -> float | None:
    if "correct" in detail:
        value = detail["correct"]
        values = value if isinstance(value, list) else [value]
        return sum(1.0 for v in values if v) / len(values) if values else None
    if "predictions" in detail and "references" in detail:
        # AccEvaluator scores exact equality after post-processing.
        return 1.0 if detail["predictions"] == detail["references"] else 0.0
    return None


def _count_predictions(run: Path, model: str, abbr: str) -> int | None:
    path = run / "predictions" / model / f"{abbr}.json"
    if not path.is_file():
        return None
    data = read_json(path)
    return len(data) if isinstance(data, (dict, list)) else None


def _fold_mmlu(subjects: list[ScoreRecord], summary: Path) -> ScoreRecord:
    """One `mmlu` record: items right over items scored; any failed subject fails the whole."""
    failed = [r.native_name for r in subjects if r.score is None]
    problems = tuple(p for r in subjects for p in r.problems)
    versions = sorted({r.config_version for r in subjects if r.config_version})
    common: dict[str, Any] = {
        "dataset": MMLU,
        "native_name": f"{names.MMLU_PREFIX}* ({len(subjects)} subjects)",
        "metric": subjects[0].metric,
        "backend": BACKEND,
        "source": str(summary),
        "config_version": ",".join(versions) or None,
    }
    if failed:
        return ScoreRecord(score=None, n=None, incomplete=True, problems=problems, **common)
    counts = [r.n for r in subjects]
    if all(c is not None for c in counts):
        n = sum(c for c in counts if c is not None)
        correct = sum(r.score * r.n / 100.0 for r in subjects if r.score is not None and r.n is not None)
        score = round(100.0 * correct / n, 6) if n else None
        item_lists = [r.items for r in subjects]
        items = None if any(i is None for i in item_lists) else tuple(x for i in item_lists if i for x in i)
        return ScoreRecord(score=score, n=n, requested=n, items=items, problems=problems, **common)
    scores = [r.score for r in subjects if r.score is not None]
    return ScoreRecord(
        score=round(sum(scores) / len(scores), 6),
        n=None,
        problems=problems,
        notes=("MMLU subject item counts unknown: unweighted mean of subjects",),
        **common,
    )
