"""Files other tools read, written from a run folder alone: `write_exports(run_dir)`.

- `exports/vllm/<profile>_<scenario>.json`: each measured serving scenario as the result file of
  `vllm bench serve --save-result --save-detailed` (`vllm_json.py`);
- `exports/benchmark.json`: every measured serving scenario as a pytest-benchmark `--benchmark-json`
  document, for `pytest-benchmark compare` across runs (`benchmark_json.py`).

Each scenario is decided again from records.jsonl (its start line, its requests, its end line) with
the gate's own `decide`, so the exports carry the figures summary.json has. A scenario that never
ended (a killed run) or could not be measured has no export; one measured twice (a continued run)
exports its last measurement. `measured_scenarios` and `export_documents` are pure of writing; the
files are replaced atomically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..serving.journal import END, START, UNMEASURED, Decision, ScenarioEnd, ScenarioStart, decide, request_record
from ..serving.records import RequestRecord
from .benchmark_json import benchmark_document, benchmark_entry
from .journal import JsonLines, is_request_record, read_json_object
from .store import RunFolder, safe_name
from .vllm_json import vllm_document

EXPORTS_DIR = "exports"
VLLM_DIR = "vllm"
BENCHMARK_FILE = "benchmark.json"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class MeasuredScenario:
    """One scenario's lines in records.jsonl and its decision."""

    start: ScenarioStart
    records: list[RequestRecord]
    decision: Decision


@dataclass
class _Open:
    start: ScenarioStart
    records: list[RequestRecord] = field(default_factory=list)


def measured_scenarios(lines: Iterable[Mapping[str, Any]]) -> list[MeasuredScenario]:
    """The scenarios of records.jsonl's lines that ended, each decided, in the order they ended. As in
    `serving.journal.replay`, the last outcome of a scenario counts: one measured again replaces its
    earlier measurement, one that could not be measured the second time has none."""
    open_blocks: dict[tuple[str, str], _Open] = {}
    done: dict[tuple[str, str], MeasuredScenario] = {}
    for line in lines:
        key = (str(line.get("nodeid")), str(line.get("scenario")))
        if is_request_record(line):
            if key in open_blocks:
                record = request_record(line)
                record.compact()  # every ended scenario's records are held until the files are built
                open_blocks[key].records.append(record)
        elif line.get("type") == START:
            open_blocks[key] = _Open(ScenarioStart.from_json(line))
        elif line.get("type") == END and key in open_blocks:
            block = open_blocks.pop(key)
            done.pop(key, None)
            done[key] = MeasuredScenario(block.start, block.records,
                                         decide(block.start, block.records, ScenarioEnd.from_json(line)))
        elif line.get("type") == UNMEASURED:  # tried again later and could not be measured: no figures
            open_blocks.pop(key, None)
            done.pop(key, None)
    return list(done.values())


def vllm_file_name(start: ScenarioStart) -> str:
    """`<profile>_<scenario>.json`, safe as a file name."""
    return f"{safe_name(start.profile)}_{safe_name(start.case_id)}.json"


def export_documents(scenarios: Iterable[MeasuredScenario], run: Mapping[str, Any]
                     ) -> dict[str, dict[str, Any]]:
    """Every export of a run by its path under `exports/` (pure): `run` is summary.json's run header."""
    documents: dict[str, dict[str, Any]] = {}
    benchmarks = []
    for item in scenarios:
        metrics, result = item.decision.metrics, item.decision.result
        name = f"{VLLM_DIR}/{vllm_file_name(item.start)}"
        if name in documents:  # two tests' scenarios (or names folded alike) never share a file
            digest = hashlib.sha256(item.start.nodeid.encode()).hexdigest()[:8]
            name = f"{name.removesuffix('.json')}-{digest}.json"
        documents[name] = vllm_document(item.start, item.records, metrics, result)
        entry = benchmark_entry(item.start, metrics, result)
        if entry is not None:
            benchmarks.append(entry)
    if documents:
        when = str(run.get("started") or _dt.datetime.now(_dt.timezone.utc).isoformat())
        documents[BENCHMARK_FILE] = benchmark_document(run, benchmarks, when)
    return documents


def write_exports(run_dir: Path) -> list[Path]:
    """Write every export of the run folder `run_dir` from its files alone; the paths written.

    Nothing is written for a run without a measured serving scenario. Earlier vLLM files of
    scenarios no longer in the run are removed.
    """
    folder = RunFolder(run_dir.parent, run_dir.name)
    scenarios = measured_scenarios(JsonLines(folder.records_path))
    run = (read_json_object(run_dir / SUMMARY_FILE) or {}).get("run") or {"id": run_dir.name}
    documents = export_documents(scenarios, run)
    root = run_dir / EXPORTS_DIR
    written = [_write_json(root / name, document) for name, document in documents.items()]
    for stale in sorted((root / VLLM_DIR).glob("*.json")) if (root / VLLM_DIR).is_dir() else ():
        if stale not in written:
            stale.unlink()
    return written


def _write_json(path: Path, document: Mapping[str, Any]) -> Path:
    """Replace `path` atomically with the document (strict JSON: no NaN)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
