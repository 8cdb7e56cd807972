"""The results folder of a run, written as results arrive so a killed run keeps what it measured.

Layout of `DIR/<run-id>/`:
- `records.jsonl`: one line per request (serving), appended and flushed as requests finish, between
  a `scenario` line when a scenario starts and a `scenario_end` line when its load is over
  (`serving/journal.py`);
- `summary.json`: run header and one entry per finished test, written when the run starts and
  rewritten atomically after each test;
- `test_result.csv`: one row per serving scenario, appended as scenarios finish;
- `logs/<test-id>.log`: a per-scenario log with the `Output Throughput: <x> token/s` line;
- `training/`, `accuracy/`: each evaluation once per run (`<name>.json`) and a `cases.jsonl` line
  per test that used it;
- `DIR/latest`: a text file naming the last run id.

`pytest-deepseek report DIR/<run-id>` rebuilds summary.json and test_result.csv from the records
and the evaluations alone (`report/rebuild.py`).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CSV_COLUMNS = (
    "profile",
    "scenario",
    "simulated",
    "api",
    "dataset",
    "mode",
    "concurrency",
    "request_rate",
    "num_prompts",
    "input_len",
    "output_len",
    "completed",
    "failed",
    "input_throughput_per_node",
    "output_throughput_per_node",
    "output_throughput",
    "output_throughput_run_window",
    "request_throughput",
    "ttft_ms_p50",
    "ttft_ms_p99",
    "tpot_ms_p50",
    "tpot_ms_p99",
    "e2e_ms_p99",
    "verdict",
    "nodeid",
)


def new_run_id(now: _dt.datetime | None = None) -> str:
    """A sortable, unique run id: `20260403-101500-ab12cd`."""
    now = now or _dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def safe_name(text: str) -> str:
    """A file-name-safe version of a test id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:150] or "test"


def csv_text(rows: Sequence[Mapping[str, Any]], *, header: bool) -> str:
    """Rows of `test_result.csv` as text (None as an empty cell), with the header line if asked."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in CSV_COLUMNS})
    return buffer.getvalue()


class RunFolder:
    """Paths of one run's results, and the append-only writers every process may use."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root = root
        self.run_id = run_id
        self.path = root / run_id
        self._lock = threading.Lock()

    def create(self) -> None:
        """Create the folder and point `latest` at it (controller only)."""
        (self.path / "logs").mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".latest.{os.getpid()}"
        tmp.write_text(self.run_id + "\n", encoding="utf-8")
        os.replace(tmp, self.root / "latest")

    @property
    def records_path(self) -> Path:
        """Where request records go."""
        return self.path / "records.jsonl"

    @property
    def summary_path(self) -> Path:
        """Where the summary goes."""
        return self.path / "summary.json"

    @property
    def csv_path(self) -> Path:
        """Where the per-scenario table goes."""
        return self.path / "test_result.csv"

    def log_path(self, test_id: str) -> Path:
        """The per-test log file."""
        return self.path / "logs" / f"{safe_name(test_id)}.log"

    def append_lines(self, path: Path, lines: Sequence[str]) -> None:
        """Append whole lines in one write (O_APPEND keeps concurrent writers' lines whole)."""
        if not lines:
            return
        data = "".join(line if line.endswith("\n") else line + "\n" for line in lines).encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def append_csv_row(self, row: Mapping[str, Any]) -> None:
        """Append one row to `test_result.csv`, writing the header first if the file is new."""
        text = csv_text([row], header=not self.csv_path.exists())
        self.append_lines(self.csv_path, text.splitlines())

    def write_csv(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite `test_result.csv` atomically with these rows (no file without rows)."""
        if not rows:
            self.csv_path.unlink(missing_ok=True)
            return
        tmp = self.path / f".test_result.{os.getpid()}.tmp"
        tmp.write_text(csv_text(rows, header=True), encoding="utf-8")
        os.replace(tmp, self.csv_path)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """Rewrite `summary.json` atomically."""
        tmp = self.path / f".summary.{os.getpid()}.tmp"
        text = json.dumps(_finite(summary), indent=2, default=_json_default, allow_nan=False)
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, self.summary_path)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
