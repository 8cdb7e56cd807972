"""diverge (the statistic rises above r x its best so far) and plateau (no progress while above T)."""

from __future__ import annotations

from typing import Sequence

from .records import Record
from .result import Check
from .spec import DivergeSpec, PlateauSpec
from .stats import statistic_series


def check_diverge(records: Sequence[Record], spec: DivergeSpec, ended: bool) -> Check:
    """Fail at the first record after ``after`` whose statistic exceeds ratio x best so far."""
    rows = [r for r in records if spec.metric in r.metrics]
    label = spec.statistic if spec.statistic == "raw" else f"{spec.statistic}({spec.window})"
    if not rows:
        return Check("diverge", spec.metric, "<=", spec.ratio, None, "error", label, None, None,
                     f"metric {spec.metric!r} not found", final=ended)
    stat = statistic_series([r.metrics[spec.metric] for r in rows], spec.statistic, spec.window)
    best: float | None = None
    best_it = 0
    for r, s in zip(rows, stat):
        if s is None or r.iteration <= spec.after or s != s:
            continue
        if best is not None and best > 0 and s > spec.ratio * best:
            return Check("diverge", spec.metric, "<=", spec.ratio * best, s, "fail", label,
                         (best_it, r.iteration), r.quote(),
                         f"{spec.metric} {label} {s:.6g} at iteration {r.iteration} > {spec.ratio:g} x best "
                         f"{best:.6g} (iteration {best_it})", final=True)
        if best is None or s < best:
            best, best_it = s, r.iteration
    return Check("diverge", spec.metric, "<=", None if best is None else spec.ratio * best, best, "pass", label,
                 (rows[0].iteration, rows[-1].iteration), None,
                 f"{spec.metric} {label} never rose above {spec.ratio:g} x its best after iteration {spec.after}",
                 final=ended)


def check_plateau(records: Sequence[Record], spec: PlateauSpec, ended: bool) -> Check:
    """Fail when ``patience`` consecutive windows bring no relative improvement ``epsilon`` above T."""
    rows = [r for r in records if spec.metric in r.metrics]
    label = f"window_mean({spec.window}) per window"
    best: float | None = None
    stale = 0
    for start in range(0, len(rows) - spec.window + 1, spec.window):
        chunk = rows[start:start + spec.window]
        mean = sum(r.metrics[spec.metric] for r in chunk) / len(chunk)
        if best is None or mean < best * (1 - spec.epsilon):
            best, stale = mean, 0
        else:
            stale += 1
        if stale >= spec.patience and mean >= spec.below:
            last = chunk[-1]
            return Check("plateau", spec.metric, "<", spec.below, mean, "fail", label,
                         (rows[0].iteration, last.iteration), last.quote(),
                         f"{spec.metric} no better than {best:.6g} by {spec.epsilon:.0%} for {stale} windows of "
                         f"{spec.window} records, still {mean:.6g} >= {spec.below:g} at iteration {last.iteration}",
                         final=True)
    return Check("plateau", spec.metric, "<", spec.below, best, "pass", label,
                 (rows[0].iteration, rows[-1].iteration) if rows else None, None,
                 f"no plateau of {spec.patience} windows above {spec.below:g}", final=ended)
