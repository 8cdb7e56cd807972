"""Reading a run folder for the HTML report: summary.json, the serving records, the training logs.

The results are summary.json's entries as the run wrote them (or as `pytest-deepseek report`
rebuilt them); the raw material is read again only for the plots: records.jsonl in one pass, each
training entry's log once with the gate's own parsers. Material that cannot be read is said in the
report, never a reason to fail it; a folder that is not a run, or a run without a readable
summary, is an `HtmlReportError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...serving.journal import END, START, ScenarioEnd, request_record
from ..entries import CollectedResult
from ..journal import CASES_FILE, TYPE_KEY, JsonLines, latest_per_test, read_json_object
from ..store import RunFolder
from .model import RunReport, ScenarioSeries, TrainingSeries
from .plotting import HtmlReportError
from .series import ScenarioReducer, training_series

def load_run(run_dir: Path) -> RunReport:
    """The run folder `run_dir` (or the run a results folder's `latest` names) read for the report."""
    from ..rebuild import RunDirError, find_run_dir

    try:
        run_dir = find_run_dir(Path(run_dir))
    except RunDirError as exc:
        raise HtmlReportError(str(exc)) from None
    folder = RunFolder(run_dir.parent, run_dir.name)
    summary = read_json_object(folder.summary_path)
    if summary is None:
        raise HtmlReportError(f"{folder.summary_path} is missing or unreadable; rebuild it from the records with: "
                              f"pytest-deepseek report {run_dir}")
    notes: list[str] = []
    entries = _entries(summary.get("tests") or [], notes)
    run = dict(summary.get("run") or {})
    files = [str(folder.summary_path), str(folder.records_path), str(folder.csv_path)]
    paths = relocated_paths(_named_paths(entries) + files, run.get("results_dir"), run_dir)
    wanted = {(e.nodeid, e.result.case_id) for e in entries
              if e.result.kind == "serving" and e.result.locations.get("records")}
    scenarios = read_scenarios(folder.records_path, wanted, notes) if wanted else {}
    training = read_training(run_dir, [e for e in entries if e.result.kind == "training"], paths, notes)
    return RunReport(run_dir=str(run_dir), run=run, entries=entries,
                     incomplete=[dict(i) for i in summary.get("incomplete") or []],
                     scenarios=scenarios, training=training, paths=paths, files=files, notes=notes)


def _entries(tests: Iterable[Any], notes: list[str]) -> list[CollectedResult]:
    out = []
    for index, data in enumerate(tests):
        try:
            out.append(CollectedResult.from_json(data))
        except (KeyError, TypeError, ValueError) as exc:
            notes.append(f"summary.json entry {index + 1} could not be read ({type(exc).__name__}: {exc})")
    return out


def _named_paths(entries: Sequence[CollectedResult]) -> list[str]:
    """Every path a result names: its locations and, for training, each log path."""
    named: list[str] = []
    for entry in entries:
        result = entry.result
        for value in result.locations.values():
            named += [part.strip() for part in str(value).split(", ")] if value else []
        named += [str(p) for p in result.details.get("paths") or ()]
        named += [str(p) for p in result.metrics.get("files") or ()] if result.kind == "training" else []
    return list(dict.fromkeys(p for p in named if p))


def relocated_paths(paths: Iterable[str], recorded_dir: str | None, run_dir: Path) -> dict[str, str | None]:
    """Where each path is now: itself when it exists, else the same place under `run_dir` when it
    was inside the run folder as recorded (`recorded_dir`; the folder was moved or copied), else None."""
    found: dict[str, str | None] = {}
    for path in paths:
        here = Path(path)
        if here.exists():
            found[path] = str(here)
            continue
        found[path] = None
        if recorded_dir:
            try:
                inside = here.relative_to(recorded_dir)
            except ValueError:
                continue
            moved = run_dir / inside
            found[path] = str(moved) if moved.exists() else None
    return found


def read_scenarios(path: Path, wanted: set[tuple[str, str]], notes: list[str]) -> dict[tuple[str, str], ScenarioSeries]:
    """The series of each wanted (nodeid, scenario) from records.jsonl, in one pass. A scenario
    started again later (a continued run) replaces its earlier attempt."""
    lines = JsonLines(path)
    open_blocks: dict[tuple[str, str], ScenarioReducer] = {}
    done: dict[tuple[str, str], ScenarioSeries] = {}
    unreadable = 0
    for line in lines:
        key = (str(line.get("nodeid")), str(line.get("scenario")))
        if key not in wanted:
            continue
        kind = line.get(TYPE_KEY)
        if kind is None:
            reducer = open_blocks.get(key)
            if reducer is not None:
                try:
                    reducer.add(request_record(line))
                except (TypeError, ValueError):
                    unreadable += 1
        elif kind == START:
            open_blocks[key] = ScenarioReducer(int((line.get("target") or {}).get("nodes") or 1))
        elif kind == END and key in open_blocks:
            done[key] = open_blocks.pop(key).finish(ScenarioEnd.from_json(line).timeline)
    if lines.torn:
        notes.append(f"{path.name}: {lines.torn} unreadable line(s) skipped (a torn last line after a kill?)")
    if unreadable:
        notes.append(f"{path.name}: {unreadable} request record(s) in an unknown shape skipped")
    missing = sorted(f"{nodeid}" for nodeid, _ in wanted - set(done))
    if missing:
        notes.append(f"{path.name}: no finished records for {len(missing)} serving test(s) (no plots): "
                     + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return done


def read_training(run_dir: Path, entries: Sequence[CollectedResult], paths: Mapping[str, str | None],
                  notes: list[str]) -> dict[tuple[str, str], TrainingSeries]:
    """Each training entry's series, its log read once with the gate's parsers (an entry has a
    convergence and a speed test: both share it)."""
    cases = {str(line.get("nodeid")): line for line in latest_per_test(JsonLines(run_dir / "training" / CASES_FILE))}
    found: dict[tuple[str, str], TrainingSeries] = {}
    for entry in entries:
        result = entry.result
        key = (result.profile, str(result.details.get("entry") or result.case_id.split(":")[0]))
        if key in found:
            continue
        case = cases.get(entry.nodeid)
        if case is None:
            found[key] = _unreadable(f"training/{CASES_FILE} has no line for {entry.nodeid}: the entry's settings "
                                     "are unknown")
            continue
        found[key] = read_training_log(dict(case.get("entry") or {}), result.metrics, result.details, paths)
    for key, series in found.items():
        if series.problem:
            notes.append(f"training {key[0]} {key[1]}: no plots ({series.problem})")
    return found


def read_training_log(entry: Mapping[str, Any], metrics: Mapping[str, Any], details: Mapping[str, Any],
                      paths: Mapping[str, str | None]) -> TrainingSeries:
    """The entry's series from the log its result names (the paths the gate was given, else the files it read)."""
    from ...training.loader import load_records
    from ...training.records import TrainingLogError

    named = [str(p) for p in details.get("paths") or ()] or [str(p) for p in metrics.get("files") or ()]
    if not named:
        return _unreadable("the result names no log")
    where = [paths.get(p) or p for p in named]
    dialect = str(metrics.get("dialect") or entry.get("dialect") or "auto")
    try:
        log = load_records(where, dialect, rank=entry.get("rank"))
        return training_series(entry, log.records, log.info)
    except (TrainingLogError, OSError, ValueError) as exc:
        return _unreadable(f"{type(exc).__name__}: {exc}")


def _unreadable(problem: str) -> TrainingSeries:
    return TrainingSeries(curves={}, statistic=None, warmup_iters=0, within=None, problem=problem)
