"""The training gate's glue: resolve a `training:` entry's log, evaluate it once, split by aspect.

A `training:` entry becomes up to two tests: `convergence` (fail fast, converge, diverge, plateau,
cross-checks, hang) and `speed` (its floors and ceilings), so a fast run that never converges reads
clearly. The evaluation is done once per entry and run, shared across the two tests and across
xdist workers through a locked JSON file in the results folder.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import PACKAGE_PREFIX, resolve_path
from .report.once import once_per_run
from .report.store import RunFolder, safe_name

SPEED_ASPECT = "speed"
CONVERGENCE_ASPECT = "convergence"


def aspects_of(entry: Mapping[str, Any]) -> list[str]:
    """The tests an entry makes: convergence (always: fail-fast runs there), speed (with bounds)."""
    aspects = [CONVERGENCE_ASPECT]
    if entry.get("floors") or entry.get("ceilings"):
        aspects.append(SPEED_ASPECT)
    return aspects


def resolve_log_paths(entry: Mapping[str, Any], cli_logs: Sequence[str], base_dir: Path | None) -> list[str]:
    """--deepseek-training-log values, else the entry's `log:` (relative to the thresholds file's folder).

    `package:examples/...` names a folder shipped inside the installed package.
    """
    raw: list[str] = list(cli_logs)
    if not raw:
        value = entry.get("log")
        raw = [value] if isinstance(value, str) else list(value or [])
    paths: list[str] = []
    for item in raw:
        if glob.has_magic(item) and not item.startswith(PACKAGE_PREFIX):
            paths.append(item)  # a glob is expanded by the loader, from the working directory
            continue
        candidate = resolve_path(item, base_dir)
        plain = Path(item).expanduser()
        # A relative log path is looked up next to the thresholds file first, then from the working directory.
        paths.append(str(plain if not candidate.exists() and plain.exists() else candidate))
    return paths


@dataclass
class TrainingEvaluation:
    """The plain-JSON result of evaluating one entry (all aspects)."""

    name: str
    verdict: str
    checks: list[dict[str, Any]]
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "checks": self.checks, "metrics": self.metrics,
                "warnings": self.warnings, "paths": self.paths}


def evaluate(entry: Mapping[str, Any], paths: list[str], *, follow: bool, timeout_s: float | None,
             train_cmd: str | None, stop_when_decided: bool, output_dir: Path,
             progress: Callable[[str], None] | None) -> TrainingEvaluation:
    """Evaluate `entry` on a finished log, or follow a live one / a launched command."""
    from .training import TrainingLogError, evaluate_entry, follow_and_evaluate, load_records

    name = str(entry.get("name", "training"))
    try:
        if follow or train_cmd:
            result = follow_and_evaluate(
                entry, paths or None, timeout_s=timeout_s or 3600.0, train_cmd=train_cmd,
                stop_when_decided=stop_when_decided, on_progress=progress, output_dir=output_dir,
            )
        else:
            if not paths:
                raise TrainingLogError(f"training entry {name!r} has no log: set log: or pass --deepseek-training-log")
            log = load_records(paths, str(entry.get("dialect", "auto")), rank=entry.get("rank"))
            result = evaluate_entry(entry, log)
    except TrainingLogError as exc:
        check = {"name": "log", "metric": "", "op": "", "threshold": None, "value": None, "verdict": "error",
                 "statistic": "", "iterations": None, "record": None, "message": str(exc)}
        return TrainingEvaluation(name, "error", [check], {}, [], paths)
    data = result.to_dict()
    return TrainingEvaluation(name, data["verdict"], data["checks"], data["metrics"], data["warnings"], paths)


def evaluate_once(folder: RunFolder, profile: str, entry: Mapping[str, Any],
                  run: Callable[[], TrainingEvaluation]) -> TrainingEvaluation:
    """Evaluate an entry once per run, across tests and processes."""
    stem = safe_name(f"{profile}-{entry.get('name', 'training')}")
    data = once_per_run(folder.path / "training", stem, lambda: run().to_json())
    return TrainingEvaluation(**data)


def split_aspect(evaluation: TrainingEvaluation, entry: Mapping[str, Any], aspect: str) -> tuple[list[dict[str, Any]], str]:
    """The checks of one aspect and their overall verdict (fail > error > inconclusive > pass)."""
    bound_keys = set((entry.get("floors") or {})) | set((entry.get("ceilings") or {}))
    shared = {"log", "entry"}
    if aspect == SPEED_ASPECT:
        checks = [c for c in evaluation.checks if c["name"] in bound_keys or c["name"] in shared]
    else:
        checks = [c for c in evaluation.checks if c["name"] not in bound_keys]
    verdicts = {c["verdict"] for c in checks}
    verdict = "error"
    if checks:
        verdict = next((v for v in ("fail", "error", "inconclusive") if v in verdicts), "pass")
    return checks, verdict


def failure_text(result: Mapping[str, Any]) -> str:
    """Expected vs measured for each check that did not pass, the deciding record, and the log."""
    lines = [f"{str(result['verdict']).upper()}: training {result['profile']} {result['entry']} ({result['aspect']})"]
    for check in result["checks"]:
        if check["verdict"] != "pass":
            lines.append(f"  [{check['verdict']}] {check['name']}: {check['message']}")
            if check.get("record"):
                lines.append(f"      deciding record: {check['record']}")
    for warning in result.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    lines.append(f"  log: {', '.join(result.get('paths') or []) or '-'}")
    return "\n".join(lines)
