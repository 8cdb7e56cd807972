"""Rebuild a run's summary.json, test_result.csv and tables from what its tests left on disk.

Each gate reads its own material back (`<gate>/gate.py: on_disk(run_dir)`): serving decides every
scenario again from records.jsonl (its start line, its requests, its end line), training and
accuracy decide their tests again from `cases.jsonl` and the once-per-run evaluations. A test that
started but never finished (the run was killed) is listed as incomplete; a torn last line is
skipped and counted. Results are the gates' own pure functions applied to the same lines, so a
finished run rebuilds to the summary it wrote; a run compared with a baseline gets each test's
comparison back from its `regression.jsonl` (`regression/recorded.py`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..gates import GATES
from .entries import CollectedResult, csv_row, summary_document, with_session_fingerprint
from .journal import CASES_FILE, Incomplete, JsonLines, read_json_object
from .store import RunFolder
from .terminal import incomplete_lines

LATEST = "latest"
SUMMARY = "summary.json"
RECORDS = "records.jsonl"


class RunDirError(Exception):
    """The folder given is not a run's results folder."""


def is_run_dir(path: Path) -> bool:
    """True when `path` holds what a run writes (a summary, records, or a gate's case journal)."""
    markers = (path / SUMMARY, path / RECORDS, path / "training" / CASES_FILE, path / "accuracy" / CASES_FILE)
    return any(marker.is_file() for marker in markers)


def find_run_dir(path: Path) -> Path:
    """The run folder `path` names: a run folder itself, or a results folder whose `latest` file
    names one (absolute). Raises `RunDirError` otherwise."""
    path = path.resolve()
    if not path.is_dir():
        raise RunDirError(f"{path} is not a folder")
    latest = path / LATEST
    if not is_run_dir(path) and latest.is_file():
        named = path / latest.read_text(encoding="utf-8").strip()
        if named.is_dir():
            path = named
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not a pytest-deepseek run folder (no {SUMMARY}, {RECORDS}, "
                          f"training/{CASES_FILE} or accuracy/{CASES_FILE})")
    return path


def previous_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary.json as last written (None when missing or unreadable)."""
    return read_json_object(run_dir / SUMMARY)


@dataclass
class Rebuilt:
    """A run read back: its header, its finished tests, its unfinished ones, and what was skipped."""

    run: dict[str, Any]
    entries: list[CollectedResult]
    incomplete: list[Incomplete] = field(default_factory=list)
    torn: int = 0  # lines that could not be read (a torn last line)
    kept: list[str] = field(default_factory=list)  # summary entries with nothing on disk, kept as they were

    @property
    def passed(self) -> bool:
        """True when there are results, every one passed, and no test was left unfinished."""
        return bool(self.entries) and not self.incomplete and all(e.result.passed for e in self.entries)

    def summary(self) -> dict[str, Any]:
        """The summary.json document."""
        return summary_document(self.run, self.entries, [item.to_json() for item in self.incomplete])

    def notes(self) -> list[str]:
        """Lines said after the tables: unfinished tests, skipped lines, entries kept as they were."""
        lines = incomplete_lines([item.to_json() for item in self.incomplete])
        if self.torn:
            lines.append(f"skipped {self.torn} unreadable line(s) (a line torn when the run was killed)")
        if self.kept:
            lines.append(f"kept {len(self.kept)} entry(ies) of the previous {SUMMARY} with nothing on disk "
                         f"to rebuild them from: {', '.join(self.kept)}")
        return lines


def rebuild_run(run_dir: Path) -> Rebuilt:
    """Every gate's results in `run_dir`, decided again from the files (see the module docstring)."""
    # here, not at the top: it brings numpy, and settings imports this module for `find_run_dir` alone
    from ..regression.recorded import REGRESSION_FILE, compared_again, latest_comparisons

    found = [gate.module().on_disk(run_dir) for gate in GATES]
    replayed = sorted((r for f in found for r in f.results), key=lambda r: r.at)
    comparisons = latest_comparisons(JsonLines(run_dir / REGRESSION_FILE))
    by_test: dict[str, CollectedResult] = {}
    for item in replayed:  # a test decided twice (started again in a continued run): the last one counts
        result = with_session_fingerprint(item.result, item.fingerprint)
        by_test.pop(item.nodeid, None)
        by_test[item.nodeid] = CollectedResult.decided(
            item.nodeid, compared_again(result, item.at, comparisons.get(item.nodeid)))
    incomplete = sorted((i for f in found for i in f.incomplete if i.nodeid not in by_test), key=lambda i: i.at)
    previous = previous_summary(run_dir) or {}
    entries = list(by_test.values())
    unfinished = {item.nodeid for item in incomplete}
    kept = [CollectedResult.from_json(e) for e in previous.get("tests") or ()
            if isinstance(e, Mapping) and e.get("nodeid") not in by_test and e.get("nodeid") not in unfinished]
    return Rebuilt(run=_run_header(run_dir, previous), entries=kept + entries, incomplete=incomplete,
                   torn=sum(f.torn for f in found), kept=[e.nodeid for e in kept])


def _run_header(run_dir: Path, previous: Mapping[str, Any]) -> dict[str, Any]:
    """The previous summary's run header (written when the run started), else what the folder says."""
    run = dict(previous.get("run") or {}) or {"id": run_dir.name, "results_dir": str(run_dir)}
    run["rebuilt"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return run


def write_rebuilt(run_dir: Path, rebuilt: Rebuilt) -> None:
    """Rewrite the run's summary.json, test_result.csv (atomically) and exports from `rebuilt`."""
    folder = RunFolder(run_dir.parent, run_dir.name)
    folder.write_summary(rebuilt.summary())
    folder.write_csv([csv_row(entry) for entry in rebuilt.entries if entry.result.kind == "serving"])
    from .exports import write_exports  # the files other tools read, from the same records

    write_exports(run_dir)
