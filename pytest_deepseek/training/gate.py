"""The training gate's entry: the cases the profiles make (`cases`) and running one (`run`).

A `training:` entry becomes up to two tests: `convergence` (fail fast, converge, diverge, plateau,
cross-checks, hang, the training command) and `speed` (its floors and ceilings), so a fast run that
never converges reads clearly. The entry is evaluated once per run, shared by its tests and by
xdist workers through a locked JSON file in the results folder.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import PACKAGE_PREFIX, resolve_path
from ..report.journal import (CASES_FILE, Incomplete, JsonLines, OnDisk, Replayed, json_line, latest_per_test,
                              read_json_object)
from ..report.once import once_per_run
from ..report.store import safe_name
from ..verdict import Check, GateResult
from .result import TrainingResult, error_check
from .spec import AUTO_DIALECT, CHECK_ENTRY, CHECK_LOG, CHECK_NONE, is_bound_check

if TYPE_CHECKING:
    from ..context import GateContext, ProgressFn
    from ..settings import Settings
    from ..thresholds import Profile

CONVERGENCE = "convergence"
SPEED = "speed"
# An unusable entry or an unreadable log is an error of every aspect.
_SHARED_CHECKS = (CHECK_ENTRY, CHECK_LOG)
_HEADLINE = ("converge.first_crossing_iteration", "converge.best_value", "last_iteration")


@dataclass(frozen=True)
class TrainingCase:
    """One training test: a profile, one of its `training:` entries, and an aspect."""

    profile: "Profile"
    entry: Mapping[str, Any]
    aspect: str  # CONVERGENCE | SPEED

    @property
    def name(self) -> str:
        """The entry's name."""
        return str(self.entry.get("name", "training"))

    @property
    def id(self) -> str:
        return f"{self.profile.name}:{self.name}:{self.aspect}"


def aspects_of(entry: Mapping[str, Any]) -> list[str]:
    """The tests an entry makes: convergence (always: fail fast runs there), speed (with bounds)."""
    aspects = [CONVERGENCE]
    if entry.get("floors") or entry.get("ceilings"):
        aspects.append(SPEED)
    return aspects


def cases(profiles: Sequence["Profile"], settings: "Settings") -> list[TrainingCase]:
    """Each `training:` entry of each profile, per aspect."""
    return [TrainingCase(profile, dict(entry), aspect) for profile in profiles for entry in profile.training
            for aspect in aspects_of(entry)]


def evaluation_stem(case: TrainingCase) -> str:
    """The name of the entry's once-per-run evaluation file (`training/<stem>.json`)."""
    return safe_name(f"{case.profile.name}-{case.name}")


def run(case: TrainingCase, ctx: "GateContext") -> GateResult:
    """Evaluate the case's entry (once per run) and decide the case's aspect.

    The case is noted in `training/cases.jsonl` first, so that the result can be decided again from
    the results folder alone (`on_disk`).
    """
    paths = log_paths(case.entry, ctx.settings, ctx.thresholds_dir)
    output_dir = ctx.folder.path / "training"
    ctx.folder.append_lines(output_dir / CASES_FILE, [json_line(case_line(case, ctx.nodeid, ctx.fingerprint))])

    def compute() -> dict[str, Any]:
        follow_s = ctx.settings.follow_timeout
        if ctx.session_deadline is not None:  # following a log never outlasts the session's wall limit
            follow_s = max(0.0, min(follow_s, ctx.session_deadline.left_s()))
        result = evaluate(case.entry, paths, ctx.settings, output_dir, ctx.progress, follow_timeout_s=follow_s)
        return {**result.to_json(), "paths": paths}

    evaluation = once_per_run(output_dir, evaluation_stem(case), compute)
    return decide(case, evaluation)


def case_line(case: TrainingCase, nodeid: str, fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The case as `training/cases.jsonl` keeps it: the test, the entry, the aspect, its evaluation."""
    return {"nodeid": nodeid, "profile": case.profile.name, "entry": dict(case.entry), "aspect": case.aspect,
            "evaluation": evaluation_stem(case), "fingerprint": dict(fingerprint), "at": time.time()}


def on_disk(run_dir: Path) -> OnDisk:
    """The results of a run's training tests, decided again from `training/cases.jsonl` and the
    evaluations (a test whose evaluation never finished is incomplete)."""
    from ..thresholds import Profile

    output_dir = run_dir / "training"
    lines = JsonLines(output_dir / CASES_FILE)
    found = OnDisk()
    for line in latest_per_test(lines):
        case = TrainingCase(Profile(name=str(line["profile"])), dict(line["entry"]), str(line["aspect"]))
        evaluation = read_json_object(output_dir / f"{line['evaluation']}.json")
        if evaluation is None:
            found.incomplete.append(Incomplete("training", str(line["nodeid"]), case.profile.name, f"{case.name}:{case.aspect}",
                                               at=float(line.get("at") or 0.0)))
        else:
            found.results.append(Replayed(str(line["nodeid"]), decide(case, evaluation),
                                          dict(line.get("fingerprint") or {}), float(line.get("at") or 0.0)))
    found.torn = lines.torn
    return found


def log_paths(entry: Mapping[str, Any], settings: "Settings", base_dir: Path | None) -> list[str]:
    """--deepseek-training-log values, else the entry's `log:`; a relative path is looked up next
    to the thresholds file (`base_dir`) first, then from the working directory.

    `package:examples/...` names a folder shipped inside the installed package.
    """
    raw = settings.layered("training_log", entry.get("log"))
    items = [raw] if isinstance(raw, str) else list(raw or ())
    paths: list[str] = []
    for item in items:
        if glob.has_magic(item) and not item.startswith(PACKAGE_PREFIX):
            paths.append(item)  # a glob is expanded by the loader, from the working directory
            continue
        candidate = resolve_path(item, base_dir)
        plain = Path(item).expanduser()
        paths.append(str(plain if not candidate.exists() and plain.exists() else candidate))
    return paths


def evaluate(entry: Mapping[str, Any], paths: list[str], settings: "Settings", output_dir: Path,
             progress: "ProgressFn | None" = None, follow_timeout_s: float | None = None) -> TrainingResult:
    """Evaluate `entry` on a finished log, or follow a live one / a launched command (every aspect)
    for at most `follow_timeout_s` (default --deepseek-follow-timeout)."""
    from .evaluate import evaluate_entry
    from .live import follow_and_evaluate
    from .loader import load_records
    from .records import TrainingLogError

    name = str(entry.get("name", "training"))
    try:
        if settings.follow or settings.train_cmd:
            return follow_and_evaluate(
                entry, paths or None,
                timeout_s=settings.follow_timeout if follow_timeout_s is None else follow_timeout_s,
                train_cmd=settings.train_cmd, stop_when_decided=settings.stop_when_decided,
                on_progress=progress, output_dir=output_dir,
            )
        if not paths:
            raise TrainingLogError(f"training entry {name!r} has no log: set log: or pass --deepseek-training-log")
        log = load_records(paths, str(entry.get("dialect", AUTO_DIALECT)), rank=entry.get("rank"))
        return evaluate_entry(entry, log)
    except TrainingLogError as exc:
        return TrainingResult(name, [error_check(CHECK_LOG, str(exc))], {})


def aspect_checks(checks: Sequence[Check], aspect: str) -> list[Check]:
    """The checks one aspect decides: speed has the floors and ceilings, convergence the rest."""
    if aspect == SPEED:
        return [c for c in checks if is_bound_check(c.name) or c.name in _SHARED_CHECKS]
    return [c for c in checks if not is_bound_check(c.name)]


def figures(checks: Sequence[Check], metrics: Mapping[str, Any], aspect: str) -> dict[str, Any]:
    """Headline numbers: each bound's measured statistic (speed), the crossing and best loss (convergence)."""
    if aspect == SPEED:
        return {f"{c.metric}.{str(c.details.get('statistic') or '').split(' ')[0]}": c.value
                for c in checks if is_bound_check(c.name) and c.value is not None}
    return {key: metrics[key] for key in _HEADLINE if metrics.get(key) is not None}


def decide(case: TrainingCase, evaluation: Mapping[str, Any]) -> GateResult:
    """The case's result from its entry's evaluation (`TrainingResult.to_json()` plus `paths`)."""
    checks = aspect_checks([Check.from_json(c) for c in evaluation["checks"]], case.aspect)
    if not checks:
        checks = [error_check(CHECK_NONE, f"no checks: training entry {case.name!r} has nothing to decide "
                                          f"for {case.aspect}")]
    paths = [str(p) for p in evaluation.get("paths") or ()]
    metrics = dict(evaluation.get("metrics") or {})
    return GateResult.decide(
        "training", case.profile.name, f"{case.name}:{case.aspect}", checks,
        metrics=metrics, figures=figures(checks, metrics, case.aspect), simulated=False,
        warnings=tuple(evaluation.get("warnings") or ()), locations={"log": ", ".join(paths)},
        fingerprint={"logs": paths, "dialect": str(case.entry.get("dialect", "auto"))},
        details={"entry": case.name, "aspect": case.aspect, "example": bool(case.entry.get("example")),
                 "paths": paths},
    )
