"""Read a run folder (or a saved baseline) into the evidence a comparison needs.

Per test: its result as summary.json holds it (decided again from the files when there is no
summary), and the material its figures' noise is estimated from:

- serving: the scenario's request records between its start and end lines of records.jsonl, judged
  over the same window as the gate judged them (the last finished attempt of a test counts);
- accuracy: the dataset's score record, per-item results included, from the profile's evaluation;
- training: the speed bounds' steady per-iteration values (from the values a baseline saved beside
  the evaluation, else read again from the logs) and the converge criterion's figures.

A test whose material cannot be read is compared on its summary figures alone (undecided).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..report.entries import CollectedResult
from ..report.journal import CASES_FILE, JsonLines, latest_per_test, read_json_object
from ..report.rebuild import RECORDS, SUMMARY, find_run_dir, rebuild_run
from ..verdict import Check, GateResult
from .compare import Evidence, RunEvidence
from .evidence import (AccuracyMaterial, ConvergeFigures, FiguresOnly, Material, ServingMaterial, SpeedSeries,
                       TrainingMaterial)

# Beside a training evaluation in a saved baseline: the speed bounds' per-iteration values.
SPEEDS_SUFFIX = ".speeds.json"
TRAINING_CONFIDENCE = 0.95  # training entries carry no confidence of their own


def load_run(path: Path, label: str | None = None) -> RunEvidence:
    """The tests of the run folder `path` (a results folder means its latest run) with their material."""
    run_dir = find_run_dir(path)
    summary = read_json_object(run_dir / SUMMARY) or {}
    results = results_by_test(run_dir, summary)
    materials = read_materials(run_dir)
    tests = tuple(Evidence(nodeid, result, materials.get(nodeid) or summary_material(result))
                  for nodeid, result in results.items())
    return RunEvidence(label or str(run_dir), str(run_dir), dict(summary.get("run") or {}), tests)


def load_test(run_dir: Path, nodeid: str, result: GateResult) -> Evidence:
    """One test of a run folder (its result as given, its material read from the folder): what a
    running session compares a test it has just finished with, reading only that test's lines."""
    material = read_materials(run_dir, only=nodeid).get(nodeid) or summary_material(result)
    return Evidence(nodeid, result, material)


def read_materials(run_dir: Path, only: str | None = None) -> dict[str, Material]:
    """Test id -> material, for every test of the run folder or `only` the one named."""
    return {**serving_materials(run_dir, only), **accuracy_materials(run_dir, only),
            **training_materials(run_dir, only)}


def summary_material(result: GateResult) -> Material:
    """The material a summary entry alone gives: a training convergence test's figures are all in
    it; any other test has its figures without what their noise is estimated from."""
    if result.kind == "training":
        figures = converge_figures(result.checks, result.metrics)
        if figures is not None:
            return TrainingMaterial(converge=figures, confidence=TRAINING_CONFIDENCE)
    return FiguresOnly(f"no {_raw_material(result.kind)} for this test", result)


def _lines(path: Path, only: str | None) -> Iterator[dict[str, Any]]:
    """The JSON-object lines of a journal; with `only`, just the lines of that test (found by its
    `"nodeid":` text before parsing: records.jsonl can be large). Torn lines are skipped."""
    if only is None:
        yield from JsonLines(path)
        return
    needle = b'"nodeid":' + json.dumps(only).encode("utf-8")
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            if needle not in raw:
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict) and value.get("nodeid") == only:
                yield value


def _raw_material(kind: str) -> str:
    return {"serving": "request records", "accuracy": "evaluation", "training": "training evaluation"}[kind]


def results_by_test(run_dir: Path, summary: Mapping[str, Any] | None = None) -> dict[str, GateResult]:
    """Test id -> result: summary.json's entries, else every gate's results decided again from the files."""
    summary = summary if summary is not None else (read_json_object(run_dir / SUMMARY) or {})
    entries = [CollectedResult.from_json(e) for e in summary.get("tests") or () if isinstance(e, Mapping)]
    if not entries:
        entries = rebuild_run(run_dir).entries
    return {entry.nodeid: entry.result for entry in entries}


# --- serving -------------------------------------------------------------------------------------


@dataclass
class _Block:
    start: Any  # serving.journal.ScenarioStart
    records: list[Any] = field(default_factory=list)


def serving_materials(run_dir: Path, only: str | None = None) -> dict[str, ServingMaterial]:
    """Test id -> the material of its last finished scenario in records.jsonl."""
    from ..serving import journal

    open_blocks: dict[tuple[str, str], _Block] = {}
    out: dict[str, ServingMaterial] = {}
    for line in _lines(run_dir / RECORDS, only):
        key = (str(line.get("nodeid")), str(line.get("scenario")))
        kind = line.get("type")
        if kind is None:
            block = open_blocks.get(key)
            if block is not None:
                block.records.append(journal.request_record(line))
        elif kind == journal.START:
            open_blocks[key] = _Block(journal.ScenarioStart.from_json(line))
        elif kind == journal.END:
            block = open_blocks.pop(key, None)
            if block is not None:
                out.pop(key[0], None)
                out[key[0]] = serving_material(block.start, block.records, journal.ScenarioEnd.from_json(line))
        elif kind == journal.UNMEASURED:
            open_blocks.pop(key, None)
            out.pop(key[0], None)
    return out


def serving_material(start: Any, records: Sequence[Any], end: Any) -> ServingMaterial:
    """A finished scenario's figures over the window the gate judged, its throughput bucket series,
    and the batch floor the gate used (pure)."""
    from ..serving.judge import bucket_seconds, min_batch_seconds
    from ..serving.metrics import bucket_series, compute_run_metrics

    scenario, target = start.scenario, start.target
    metrics = compute_run_metrics(records, end.timeline, nodes=target.nodes,
                                  devices_per_node=target.devices_per_node, slo=scenario.slo)
    bucket_s = bucket_seconds(metrics)
    return ServingMaterial(metrics, bucket_series(records, metrics, bucket_s=bucket_s), bucket_s,
                           min_batch_seconds(scenario, target), scenario.confidence,
                           gated=tuple(dict.fromkeys([*scenario.floors, *scenario.ceilings])))


# --- accuracy ------------------------------------------------------------------------------------


def accuracy_materials(run_dir: Path, only: str | None = None) -> dict[str, AccuracyMaterial]:
    """Test id -> its dataset's score record from the profile's evaluation."""
    from ..accuracy.records import ScoreRecord

    folder = run_dir / "accuracy"
    out: dict[str, AccuracyMaterial] = {}
    for line in latest_per_test(_lines(folder / CASES_FILE, only)):
        evaluation = read_json_object(folder / f"{line.get('evaluation')}.json") or {}
        dataset = dict(line.get("dataset") or {})
        raw = (evaluation.get("records") or {}).get(str(dataset.get("name")))
        if not isinstance(raw, dict):
            continue
        record = ScoreRecord.from_dict(raw)
        items = None if record.items is None else {item.id: item.score for item in record.items}
        confidence = float(dataset.get("confidence") or line.get("confidence") or TRAINING_CONFIDENCE)
        out[str(line["nodeid"])] = AccuracyMaterial(record.score, record.n, items, confidence)
    return out


# --- training ------------------------------------------------------------------------------------


def training_materials(run_dir: Path, only: str | None = None) -> dict[str, TrainingMaterial]:
    """Test id -> the figures of its training entry's evaluation for its aspect."""
    from ..training.gate import CONVERGENCE

    folder = run_dir / "training"
    out: dict[str, TrainingMaterial] = {}
    values_by_stem: dict[str, dict[str, tuple[float, ...]] | str] = {}
    for line in latest_per_test(_lines(folder / CASES_FILE, only)):
        stem = str(line.get("evaluation"))
        evaluation = read_json_object(folder / f"{stem}.json")
        if evaluation is None:
            continue
        checks = [Check.from_json(c) for c in evaluation.get("checks") or ()]
        metrics = dict(evaluation.get("metrics") or {})
        if line.get("aspect") == CONVERGENCE:
            out[str(line["nodeid"])] = TrainingMaterial(converge=converge_figures(checks, metrics),
                                                        confidence=TRAINING_CONFIDENCE)
            continue
        if stem not in values_by_stem:
            values_by_stem[stem] = saved_or_read_speeds(folder / f"{stem}{SPEEDS_SUFFIX}",
                                                        dict(line.get("entry") or {}),
                                                        [str(p) for p in evaluation.get("paths") or ()])
        out[str(line["nodeid"])] = TrainingMaterial(speeds=speed_series(checks, values_by_stem[stem]),
                                                    confidence=TRAINING_CONFIDENCE)
    return out


def converge_figures(checks: Sequence[Check], metrics: Mapping[str, Any]) -> ConvergeFigures | None:
    """The converge criterion's figures from an evaluation (None without a converge criterion)."""
    from ..training.spec import CHECK_CONVERGE

    check = next((c for c in checks if c.name == CHECK_CONVERGE and c.verdict != "error"), None)
    if check is None:
        return None
    crossing = metrics.get("converge.first_crossing_iteration")
    return ConvergeFigures(
        metric=check.metric, best_value=metrics.get("converge.best_value"),
        half_unit=float(metrics.get("converge.printed_half_unit") or 0.0),
        first_crossing=int(crossing) if crossing is not None else None,
        logging_interval=int(metrics.get("converge.logging_interval") or 1))


def speed_series(checks: Iterable[Check], values: Mapping[str, tuple[float, ...]] | str) -> tuple[SpeedSeries, ...]:
    """Each decided floor or ceiling with its per-iteration values (`values` by check name, or why
    there are none)."""
    from ..training.spec import is_bound_check

    out = []
    for check in checks:
        if not is_bound_check(check.name) or check.verdict == "error":
            continue
        found = values.get(check.name) if isinstance(values, Mapping) else None
        why = values if isinstance(values, str) else ("" if found is not None else "not in the log")
        out.append(SpeedSeries(check.metric, check.op, str(check.details.get("statistic") or "median"),
                               check.value, found, why))
    return tuple(out)


def saved_or_read_speeds(saved: Path, entry: Mapping[str, Any], paths: Sequence[str]
                         ) -> dict[str, tuple[float, ...]] | str:
    """The speed bounds' per-iteration values saved beside the evaluation, else read again from the
    logs; the reason when neither can be had."""
    data = read_json_object(saved)
    if data is not None:
        return {name: tuple(float(v) for v in values) for name, values in data.items()}
    return read_speed_values(entry, paths)


def read_speed_values(entry: Mapping[str, Any], paths: Sequence[str]) -> dict[str, tuple[float, ...]] | str:
    """Check name -> the steady, outlier-free values each floor or ceiling of `entry` is decided on,
    read again from the logs (the reason when they cannot be read)."""
    from ..training.loader import load_records
    from ..training.records import TrainingLogError
    from ..training.spec import AUTO_DIALECT, read_entry
    from ..training.speed import DERIVED, Topology, bound_rows, derive

    if not paths:
        return "no training log named"
    try:
        spec = read_entry(entry)
        log = load_records(list(paths), str(entry.get("dialect", AUTO_DIALECT)), rank=entry.get("rank"))
    except (TrainingLogError, ValueError, OSError) as exc:
        return f"the log cannot be read again: {exc}"
    records = log.records
    if any(b.metric in DERIVED for b in spec.bounds):
        records = [replace(r, metrics=dict(r.metrics)) for r in records]  # derived figures go on copies
        derive(records, Topology.resolve(spec, log.info))
    return {b.check_name: tuple(float(r.metrics[b.metric]) for r in bound_rows(records, b, spec)[0])
            for b in spec.bounds}
