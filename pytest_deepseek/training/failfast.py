"""fail fast: NaN/inf, crash messages, nan/skipped counters, overflow streaks, a vanishing loss."""

from __future__ import annotations

import math
from typing import Sequence

from ..verdict import Check
from .records import Event, Record
from .result import training_check
from .spec import CHECK_FAIL_FAST, FailFastSpec


def _fail(what: str, metric: str, rec: Record, message: str, value: float | None = None,
          threshold: float | None = None, op: str = "no") -> Check:
    return training_check(CHECK_FAIL_FAST, "fail", message, metric=metric, op=op, threshold=threshold, value=value,
                          statistic=what, iterations=(rec.iteration, rec.iteration), record=rec.quote(), final=True)


def check_fail_fast(records: Sequence[Record], events: Sequence[Event], spec: FailFastSpec,
                    ended: bool) -> Check:
    """The first fail-fast condition found, in log order, or a pass."""
    if spec.crash and events:
        ev, last = events[0], events[-1]
        tail = f" ... {last.line.strip()[:200]} ({last.file}:{last.lineno})" if last is not ev else ""
        return training_check(CHECK_FAIL_FAST, "fail",
                              f"crash message at {ev.file}:{ev.lineno}: {ev.line.strip()[:200]}{tail}",
                              metric="log", op="no", statistic="crash", record=ev.quote(), final=True)
    if not _suspect(records, spec):
        span = (records[0].iteration, records[-1].iteration) if records else None
        return _pass(records, spec, ended, span)
    seen: set[str] = set()
    streak = 0
    streak_start: Record | None = None
    for rec in records:
        m = rec.metrics
        if spec.nan:
            for key in spec.metrics:
                v = m.get(key)
                if v is not None and (math.isnan(v) or math.isinf(v)):
                    return _fail("non-finite", key, rec, f"{key} is {v} at iteration {rec.iteration}", v)
        nan_it = m.get("nan_iterations")
        if nan_it is not None and nan_it > spec.nan_iterations:
            return _fail("counter", "nan_iterations", rec,
                         f"number of nan iterations {nan_it:g} > {spec.nan_iterations:g} at iteration "
                         f"{rec.iteration}", nan_it, spec.nan_iterations, "<=")
        skipped = m.get("skipped_iterations")
        if spec.skipped_iterations is not None and skipped is not None and skipped > spec.skipped_iterations:
            return _fail("counter", "skipped_iterations", rec,
                         f"skipped iterations {skipped:g} > {spec.skipped_iterations:g} at iteration "
                         f"{rec.iteration}", skipped, spec.skipped_iterations, "<=")
        if m.get("overflow") == 1.0:
            streak += 1
            streak_start = streak_start or rec
            if spec.overflow_streak and streak >= spec.overflow_streak:
                return _fail("overflow streak", "overflow", rec,
                             f"{streak} consecutive overflow iterations from iteration "
                             f"{streak_start.iteration} to {rec.iteration}", float(streak),
                             float(spec.overflow_streak), "<")
        else:
            streak, streak_start = 0, None
        if spec.missing_metric:
            for key in spec.metrics[:1] + spec.metrics[-1:]:
                if key in m:
                    seen.add(key)
                elif key in seen:
                    return _fail("missing metric", key, rec,
                                 f"{key} was logged before and is missing at iteration {rec.iteration} "
                                 "(Megatron drops a NaN loss)")
    span = (records[0].iteration, records[-1].iteration) if records else None
    return _pass(records, spec, ended, span)


def _pass(records: Sequence[Record], spec: FailFastSpec, ended: bool, span: tuple[int, int] | None) -> Check:
    return training_check(CHECK_FAIL_FAST, "pass",
                          f"no NaN/inf, crash message, nan/skipped counter or overflow streak in {len(records)} "
                          "records",
                          metric=",".join(spec.metrics), op="no", statistic="every record", iterations=span,
                          final=ended)


def _suspect(records: Sequence[Record], spec: FailFastSpec) -> bool:
    """A quick column-wise screen; the record-by-record scan runs only when it finds something."""
    ms = [r.metrics for r in records]
    if spec.nan:
        for key in spec.metrics:
            col = [m[key] for m in ms if key in m]
            if col and not math.isfinite(sum(col)):
                return True
    nan_it = [m["nan_iterations"] for m in ms if "nan_iterations" in m]
    if nan_it and max(nan_it) > spec.nan_iterations:
        return True
    if spec.skipped_iterations is not None:
        sk = [m["skipped_iterations"] for m in ms if "skipped_iterations" in m]
        if sk and max(sk) > spec.skipped_iterations:
            return True
    if spec.overflow_streak and 1.0 in [m.get("overflow") for m in ms]:
        return True
    if spec.missing_metric:
        for key in set(spec.metrics[:1] + spec.metrics[-1:]):
            present = [key in m for m in ms]
            if True in present and False in present[present.index(True):]:
                return True
    return False
