"""diverge (the statistic rises above r x its best so far) and plateau (no progress while above T)."""

from __future__ import annotations

from typing import Sequence

from ..verdict import Check
from .records import Record
from .result import training_check
from .spec import CHECK_DIVERGE, CHECK_PLATEAU, DivergeSpec, PlateauSpec
from .stats import statistic_series


def check_diverge(records: Sequence[Record], spec: DivergeSpec, ended: bool) -> Check:
    """Fail at the first record after ``after`` whose statistic exceeds ratio x best so far."""
    rows = [r for r in records if spec.metric in r.metrics]
    label = spec.statistic if spec.statistic == "raw" else f"{spec.statistic}({spec.window})"
    if not rows:
        return training_check(CHECK_DIVERGE, "error", f"metric {spec.metric!r} not found", metric=spec.metric,
                              op="<=", threshold=spec.ratio, statistic=label, final=ended)
    stat = statistic_series([r.metrics[spec.metric] for r in rows], spec.statistic, spec.window)
    best: float | None = None
    best_it = 0
    for r, s in zip(rows, stat):
        if s is None or r.iteration <= spec.after or s != s:
            continue
        if best is not None and best > 0 and s > spec.ratio * best:
            return training_check(CHECK_DIVERGE, "fail",
                                  f"{spec.metric} {label} {s:.6g} at iteration {r.iteration} > {spec.ratio:g} x "
                                  f"best {best:.6g} (iteration {best_it})",
                                  metric=spec.metric, op="<=", threshold=spec.ratio * best, value=s, statistic=label,
                                  iterations=(best_it, r.iteration), record=r.quote(), final=True)
        if best is None or s < best:
            best, best_it = s, r.iteration
    return training_check(CHECK_DIVERGE, "pass",
                          f"{spec.metric} {label} never rose above {spec.ratio:g} x its best after iteration "
                          f"{spec.after}",
                          metric=spec.metric, op="<=", threshold=None if best is None else spec.ratio * best,
                          value=best, statistic=label, iterations=(rows[0].iteration, rows[-1].iteration),
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
            return training_check(CHECK_PLATEAU, "fail",
                                  f"{spec.metric} no better than {best:.6g} by {spec.epsilon:.0%} for {stale} "
                                  f"windows of {spec.window} records, still {mean:.6g} >= {spec.below:g} at "
                                  f"iteration {last.iteration}",
                                  metric=spec.metric, op="<", threshold=spec.below, value=mean, statistic=label,
                                  iterations=(rows[0].iteration, last.iteration), record=last.quote(), final=True)
    return training_check(CHECK_PLATEAU, "pass", f"no plateau of {spec.patience} windows above {spec.below:g}",
                          metric=spec.metric, op="<", threshold=spec.below, value=best, statistic=label,
                          iterations=(rows[0].iteration, rows[-1].iteration) if rows else None, final=ended)
