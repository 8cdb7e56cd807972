"""converge: the chosen statistic of a metric is below T at a logged iteration <= N, for k records."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..verdict import Check, Verdict
from .normalise import half_unit, printed_token
from .records import Record
from .result import training_check
from .spec import CHECK_CONVERGE, ConvergeSpec
from .stats import median_interval, statistic_series


def _label(spec: ConvergeSpec) -> str:
    if spec.statistic == "raw":
        return "raw"
    return f"{spec.statistic}({spec.window})"


def _half_units(rows: Sequence[Record], metric: str) -> list[float]:
    out = []
    for r in rows:
        tok = printed_token(r.line, metric)
        out.append(half_unit(tok) if tok else 0.0)
    return out


@dataclass(frozen=True)
class _Scan:
    """Where the statistic first stays below the threshold, and the best value before ``within``."""

    crossing: int | None  # index of the first record of the first sustained crossing
    best: int | None  # index of the lowest statistic at an iteration <= within
    at_within: float | None  # the statistic at the last record <= within


def _series(rows: Sequence[Record], spec: ConvergeSpec) -> tuple[list[float | None], float]:
    """The statistic per record and the coarsest printed half unit (every record when strict, else a sample)."""
    values = [r.metrics[spec.metric] for r in rows]
    halves = _half_units(rows, spec.metric) if spec.strict else _half_units(rows[:50] + rows[-50:], spec.metric)
    if spec.strict:
        # the true value may be anywhere within half a unit of the last printed digit
        # (1 + 1e-9): 0.0012 + 5e-05 must not round to just under 0.00125
        values = [v + h * (1 + 1e-9) for v, h in zip(values, halves)]
    return statistic_series(values, spec.statistic, spec.window), max(halves) if halves else 0.0


def _scan(rows: Sequence[Record], stat: Sequence[float | None], spec: ConvergeSpec) -> _Scan:
    within = spec.within
    best_i = None
    run_start = None
    crossing = None
    for i, s in enumerate(stat):
        it = rows[i].iteration
        if s is not None and not math.isnan(s) and (within is None or it <= within):
            if best_i is None or s < stat[best_i]:  # type: ignore[operator]
                best_i = i
        if s is not None and s < spec.below:
            if run_start is None:
                run_start = i
            if i - run_start + 1 >= spec.sustain and (within is None or rows[run_start].iteration <= within):
                crossing = run_start
                break
        else:
            run_start = None
            if within is not None and it > within:
                break
    at_within = None
    if within is not None:
        upto = [i for i, r in enumerate(rows) if r.iteration <= within and stat[i] is not None]
        if upto:
            at_within = stat[upto[-1]]
    return _Scan(crossing, best_i, at_within)


def _precision_note(precision: float, spec: ConvergeSpec) -> str:
    """A note when the printed precision is coarse for the threshold (and strict does not count it)."""
    if precision and precision > 0.01 * spec.below and not spec.strict:
        return f"printed precision ±{precision:g} is coarse for {spec.below:g} (strict: true counts it)"
    return ""


def check_converge(records: Sequence[Record], spec: ConvergeSpec, ended: bool,
                   where: str = "") -> tuple[Check, dict[str, Any]]:
    """The converge check and its metrics (first crossing, value at ``within``, best)."""
    rows = [r for r in records if spec.metric in r.metrics]
    label = _label(spec)
    if not rows:
        return training_check(CHECK_CONVERGE, "error", f"metric {spec.metric!r} not found in {where or 'the log'}",
                              metric=spec.metric, op="<", threshold=spec.below, statistic=label, final=ended), {}
    stat, precision = _series(rows, spec)
    scan = _scan(rows, stat, spec)
    interval = median_interval([r.iteration for r in rows])
    metrics: dict[str, Any] = {"statistic": label, "logging_interval": interval, "n_records": len(rows),
                               "printed_half_unit": precision, "first_crossing_iteration": None,
                               "value_at_within": scan.at_within}
    if scan.best is not None:
        metrics["best_value"] = stat[scan.best]
        metrics["best_iteration"] = rows[scan.best].iteration
    note = _precision_note(precision, spec)
    if note:
        metrics["precision_warning"] = note
    if scan.crossing is not None:
        metrics["first_crossing_iteration"] = rows[scan.crossing].iteration
    tail = (f"; logging interval {interval}" if interval else "") + (f"; note: {note}" if note else "")
    return _decide(rows, stat, scan, spec, ended, tail), metrics


def _decide(rows: Sequence[Record], stat: Sequence[float | None], scan: _Scan, spec: ConvergeSpec, ended: bool,
            tail: str) -> Check:
    """Pass at a sustained crossing; fail once ``within`` (or a finished log) is passed without one."""
    label, within = _label(spec), spec.within
    within_txt = f" (within {within})" if within is not None else ""
    strict_txt = " (strict: printed value + half a unit)" if spec.strict else ""
    expected = f"expected {spec.metric} {label}"

    def check(verdict: Verdict, value: float | None, end: int, idx: int, message: str, **extra: Any) -> Check:
        return training_check(CHECK_CONVERGE, verdict, message, metric=spec.metric, op="<", threshold=spec.below,
                              value=value, statistic=label, iterations=(rows[0].iteration, end),
                              record=rows[idx].quote(), final=verdict != "inconclusive", **extra)

    if scan.crossing is not None:
        r = rows[scan.crossing]
        sustain_txt = f", sustained {spec.sustain} records" if spec.sustain > 1 else ""
        return check("pass", stat[scan.crossing], rows[scan.crossing + spec.sustain - 1].iteration, scan.crossing,
                     f"{expected}{strict_txt} < {spec.below:g}{within_txt}; measured "
                     f"{stat[scan.crossing]:.6g} at iteration {r.iteration}{sustain_txt}{tail}",
                     first_crossing_iteration=r.iteration)
    last = rows[-1].iteration
    if scan.best is not None:
        tail = f"; best {stat[scan.best]:.6g} at iteration {rows[scan.best].iteration}" + tail
    if within is not None and (last > within or (ended and last >= within)):
        upto = [i for i, r in enumerate(rows) if r.iteration <= within]
        idx = upto[-1] if upto else 0
        return check("fail", scan.at_within, rows[idx].iteration, idx,
                     f"{expected}{strict_txt} < {spec.below:g} by iteration {within}; "
                     f"measured {_fmt(scan.at_within)} at iteration {rows[idx].iteration}{tail}")
    if within is None and ended:
        return check("fail", stat[-1], last, -1, f"{expected} < {spec.below:g}; never reached in {len(rows)} records "
                                                  f"up to iteration {last}{tail}")
    if ended:
        # a finished log that stops short of ``within`` without crossing: the run did not converge
        return check("fail", stat[-1], last, -1, f"{expected} < {spec.below:g}{within_txt}; the finished log ends at "
                                                  f"iteration {last} with {_fmt(stat[-1])}{tail}")
    return check("inconclusive", stat[-1], last, -1, f"{expected} < {spec.below:g}{within_txt}; the log ends at "
                                                      f"iteration {last} with {_fmt(stat[-1])}{tail}")


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.6g}"
