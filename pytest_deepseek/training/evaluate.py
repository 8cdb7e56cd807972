"""``evaluate_entry``: every criterion of one ``training:`` entry over a parsed log."""

from __future__ import annotations

from typing import Any, Mapping

from ..verdict import Check
from .converge import check_converge
from .failfast import check_fail_fast
from .records import Record, TrainingLog
from .result import TrainingResult, as_monitor, error_check
from .spec import CHECK_DIVERGE, CHECK_ENTRY, CHECK_FAIL_FAST, CHECK_PLATEAU, CROSS_CHECK_PREFIX, read_entry
from .speed import DERIVED, Topology, check_bound, cross_checks, derive
from .trend import check_diverge, check_plateau

# Checks that watch for trouble: passing so far, they are never final before the log ends.
MONITORS = (CHECK_FAIL_FAST, CHECK_DIVERGE, CHECK_PLATEAU)


def evaluate_entry(entry: Mapping[str, Any], log: TrainingLog, *, ended: bool = True) -> TrainingResult:
    """Evaluate one thresholds ``training:`` item (a plain dict) against ``log``.

    ``ended`` says the log is complete; a live follower passes False so that checks which more
    records could still change stay ``inconclusive`` / not final.
    """
    name = str(entry.get("name", "training"))
    try:
        spec = read_entry(entry)
    except ValueError as exc:
        return TrainingResult(name, [error_check(CHECK_ENTRY, f"training entry {name!r}: {exc}")], {})
    records = log.records
    where = ", ".join(log.files) or "the log"
    topo = Topology.resolve(spec, log.info)
    how = None
    if any(b.metric in DERIVED for b in spec.bounds):
        # derived figures go on copies: the log stays as parsed
        records = [Record(r.iteration, dict(r.metrics), r.rank, r.time, r.file, r.lineno, r.line, r.epoch)
                   for r in records]
        how = derive(records, topo)
    metrics: dict[str, Any] = {
        "dialect": log.dialect, "rank": log.rank, "n_records": len(records), "files": list(log.files),
        "corrupt_lines": log.corrupt_lines, "first_iteration": records[0].iteration if records else None,
        "last_iteration": records[-1].iteration if records else None, "ranks_seen": list(log.ranks_seen),
        "seq_length": topo.seq_length, "global_batch_size": topo.global_batch_size, "devices": topo.devices,
        "topology_source": topo.source, "tokens_per_sec_per_device_from": how,
    }
    checks: list[Check] = [check_fail_fast(records, log.events, spec.fail_fast, ended)]
    if spec.converge:
        c, m = check_converge(records, spec.converge, ended, where)
        checks.append(c)
        metrics.update({f"converge.{k}": v for k, v in m.items()})
    if spec.diverge:
        checks.append(check_diverge(records, spec.diverge, ended))
    if spec.plateau:
        checks.append(check_plateau(records, spec.plateau, ended))
    for bound in spec.bounds:
        c, m = check_bound(records, bound, spec, ended, where)
        checks.append(c)
        metrics.update(m)
    if spec.cross_checks:
        checks.extend(cross_checks(records, topo, spec, log.dialect, ended))
    checks = [as_monitor(c) if c.name in MONITORS or c.name.startswith(CROSS_CHECK_PREFIX) else c for c in checks]
    warnings = list(log.warnings)
    if log.corrupt_lines:
        warnings.append(f"{log.corrupt_lines} corrupt line(s) skipped, e.g. {log.corrupt_examples[0]}")
    return TrainingResult(name, checks, metrics, warnings)
