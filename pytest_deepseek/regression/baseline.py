"""Baselines: a run's results kept under a name (or at a path) to compare later runs with.

    <results dir>/baselines/<NAME>/    (or the PATH given)
        baseline.json                  name, the run it was saved from, when
        summary.json, records.jsonl, test_result.csv
        training/cases.jsonl, training/<evaluation>.json, training/<evaluation>.speeds.json
        accuracy/cases.jsonl, accuracy/<evaluation>.json

A baseline is a run folder (`pytest-deepseek report` and `compare` read it as one) holding only what
results are decided from: the request records, the gates' journals and evaluations (per-item
accuracy results are inside the evaluations). The training logs stay where they are; the values
the speed bounds were decided on are saved beside the evaluations, so a baseline keeps its noise
when the logs move. Saving again under a name replaces that baseline whole.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from ..report.journal import CASES_FILE, JsonLines, latest_per_test, read_json_object
from ..report.rebuild import RECORDS, SUMMARY, RunDirError, find_run_dir, is_run_dir
from ..verdict import GateResult

BASELINES = "baselines"
BASELINE_FILE = "baseline.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TOP_FILES = (SUMMARY, RECORDS, "test_result.csv")
_GATE_FOLDERS = ("training", "accuracy")


class BaselineError(Exception):
    """A baseline that cannot be saved or found."""


def is_name(text: str) -> bool:
    """True for a baseline name (letters, digits, `.`, `_`, `-`), False for a path."""
    return bool(_NAME.match(text)) and text not in (".", "..")


def baselines_dir(results_dir: Path) -> Path:
    """Where named baselines live."""
    return results_dir / BASELINES


def available(results_dir: Path) -> list[str]:
    """The names of the saved baselines, sorted."""
    folder = baselines_dir(results_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / BASELINE_FILE).is_file())


def destination(target: str, results_dir: Path) -> Path:
    """The folder `target` names: `<results dir>/baselines/NAME` for a name, else the path itself."""
    if is_name(target):
        return baselines_dir(results_dir) / target
    return Path(target).expanduser().resolve()


def save_baseline(run_dir: Path, target: str, results_dir: Path) -> Path:
    """Save the run folder `run_dir` as the baseline `target` (NAME or PATH); the baseline's folder.

    The copy is made beside the destination and moved into place, so a baseline being replaced is
    never seen half written. Raises `BaselineError` for a folder that is not a run, or a destination
    that is not a new folder or an earlier baseline (see `_check_destination`).
    """
    try:
        run_dir = find_run_dir(run_dir)
    except RunDirError as exc:
        raise BaselineError(str(exc)) from None
    dest = destination(target, results_dir)
    _check_destination(dest, run_dir, results_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.saving.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    _copy_run(run_dir, staging)
    _write_speeds(staging / "training")
    header = {"name": dest.name, "source": str(run_dir), "run_id": run_dir.name,
              "saved": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    (staging / BASELINE_FILE).write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
    retired = dest.parent / f".{dest.name}.replaced.{os.getpid()}"
    if dest.exists():
        os.replace(dest, retired)
    os.replace(staging, dest)
    shutil.rmtree(retired, ignore_errors=True)
    return dest


def _check_destination(dest: Path, run_dir: Path, results_dir: Path) -> None:
    """Refuse a destination whose replacement would destroy anything but an earlier baseline: the run
    itself, a folder holding the run, the results or the working directory, or an existing folder
    that is not a baseline."""
    protected = {run_dir.resolve(), results_dir.resolve(), Path.cwd().resolve()}
    if dest == run_dir or run_dir in dest.parents:
        raise BaselineError(f"cannot save the baseline {dest} inside the run folder {run_dir}")
    if any(dest == kept or dest in kept.parents for kept in protected):
        raise BaselineError(f"cannot save the baseline at {dest}: it holds the run, the results or the working "
                            "directory, which saving would replace; give a name or a new folder")
    if dest.exists() and not (dest / BASELINE_FILE).is_file() and (not dest.is_dir() or any(dest.iterdir())):
        raise BaselineError(f"cannot save the baseline at {dest}: it exists and is not a baseline (no "
                            f"{BASELINE_FILE}); only an earlier baseline is replaced")


def _copy_run(run_dir: Path, dest: Path) -> None:
    """The files results are decided from (not the logs, nor the backends' own output folders)."""
    for name in _TOP_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, dest / name)
    for gate in _GATE_FOLDERS:
        source = run_dir / gate
        if not source.is_dir():
            continue
        (dest / gate).mkdir()
        for path in source.iterdir():
            if path.is_file() and (path.name == CASES_FILE or path.suffix == ".json"):
                shutil.copy2(path, dest / gate / path.name)


def _write_speeds(training: Path) -> None:
    """Beside each training evaluation with speed bounds, the values they were decided on (when the
    logs can still be read)."""
    from .load import SPEEDS_SUFFIX, read_speed_values

    done: set[str] = set()
    for line in latest_per_test(JsonLines(training / CASES_FILE)):
        stem = str(line.get("evaluation"))
        entry = line.get("entry") or {}
        if stem in done or not (entry.get("floors") or entry.get("ceilings")):
            continue
        done.add(stem)
        saved = training / f"{stem}{SPEEDS_SUFFIX}"
        if saved.exists():
            continue
        evaluation = read_json_object(training / f"{stem}.json") or {}
        values = read_speed_values(entry, [str(p) for p in evaluation.get("paths") or ()])
        if isinstance(values, Mapping):
            saved.write_text(json.dumps({k: list(v) for k, v in values.items()}) + "\n", encoding="utf-8")


def resolve(spec: str | Path, results_dir: Path) -> Path:
    """The run folder `spec` names: a run folder or a baseline's folder, a results folder (its latest
    run), or the name of a baseline saved in `<results dir>/baselines/`. Raises `BaselineError`."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        try:
            return find_run_dir(path)
        except RunDirError as exc:
            if not is_name(text):
                raise BaselineError(str(exc)) from None
    if is_name(text):
        named = baselines_dir(results_dir) / text
        if is_run_dir(named):
            return named.resolve()
        names = available(results_dir)
        listed = f"saved baselines: {', '.join(names)}" if names else "no baseline saved yet"
        raise BaselineError(f"{text!r} is neither a run folder nor a baseline in {baselines_dir(results_dir)} "
                            f"({listed})")
    raise BaselineError(f"{text} is not a folder")


def load_results(spec: str | Path, results_dir: Path) -> dict[str, GateResult]:
    """Test id -> result of the run or baseline `spec` names (see `resolve`)."""
    from .load import results_by_test

    return results_by_test(resolve(spec, results_dir))
