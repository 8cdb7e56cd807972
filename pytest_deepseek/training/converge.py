"""converge: the chosen statistic of a metric is below T at a logged iteration <= N, for k records."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .normalise import half_unit, printed_token
from .records import Record
from .result import Check
from .spec import ConvergeSpec
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


def check_converge(records: Sequence[Record], spec: ConvergeSpec, ended: bool,
                   where: str = "") -> tuple[Check, dict[str, Any]]:
    """The converge check and its metrics (first crossing, value at ``within``, best)."""
    rows = [r for r in records if spec.metric in r.metrics]
    label = _label(spec)
    name = "converge"
    if not rows:
        return Check(name, spec.metric, "<", spec.below, None, "error", label, None, None,
                     f"metric {spec.metric!r} not found in {where or 'the log'}", final=ended), {}
    values = [r.metrics[spec.metric] for r in rows]
    # printed precision: every record when it matters (strict), else a sample for the warning
    halves = _half_units(rows, spec.metric) if spec.strict else _half_units(rows[:50] + rows[-50:], spec.metric)
    if spec.strict:
        # the true value may be anywhere within half a unit of the last printed digit
        # (1 + 1e-9): 0.0012 + 5e-05 must not round to just under 0.00125
        adjusted = [v + h * (1 + 1e-9) for v, h in zip(values, halves)]
        stat = statistic_series(adjusted, spec.statistic, spec.window)
    else:
        stat = statistic_series(values, spec.statistic, spec.window)
    within = spec.within
    interval = median_interval([r.iteration for r in rows])
    precision = max(halves) if halves else 0.0
    metrics: dict[str, Any] = {"statistic": label, "logging_interval": interval, "n_records": len(rows),
                               "printed_half_unit": precision, "first_crossing_iteration": None}
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
    metrics["value_at_within"] = at_within
    if best_i is not None:
        metrics["best_value"] = stat[best_i]
        metrics["best_iteration"] = rows[best_i].iteration
    warn = ""
    if precision and precision > 0.01 * spec.below and not spec.strict:
        warn = (f"; note: printed precision ±{precision:g} is coarse for {spec.below:g}"
                " (strict: true counts it)")
        metrics["precision_warning"] = warn[8:]
    sustain_txt = f", sustained {spec.sustain} records" if spec.sustain > 1 else ""
    within_txt = f" (within {within})" if within is not None else ""
    strict_txt = " (strict: printed value + half a unit)" if spec.strict else ""
    interval_txt = f"; logging interval {interval}" if interval else ""
    if crossing is not None:
        r = rows[crossing]
        metrics["first_crossing_iteration"] = r.iteration
        end = rows[crossing + spec.sustain - 1].iteration
        return Check(name, spec.metric, "<", spec.below, stat[crossing], "pass", label,
                     (rows[0].iteration, end), r.quote(),
                     f"expected {spec.metric} {label}{strict_txt} < {spec.below:g}{within_txt}; measured "
                     f"{stat[crossing]:.6g} at iteration {r.iteration}{sustain_txt}{interval_txt}{warn}",
                     final=True, details={"first_crossing_iteration": r.iteration}), metrics
    last = rows[-1].iteration
    best_txt = ""
    if best_i is not None:
        best_txt = f"; best {stat[best_i]:.6g} at iteration {rows[best_i].iteration}"
    if within is not None and last > within or (within is not None and ended and last >= within):
        upto = [i for i, r in enumerate(rows) if r.iteration <= within]
        idx = upto[-1] if upto else 0
        return Check(name, spec.metric, "<", spec.below, at_within, "fail", label,
                     (rows[0].iteration, rows[idx].iteration), rows[idx].quote(),
                     f"expected {spec.metric} {label}{strict_txt} < {spec.below:g} by iteration {within}; "
                     f"measured {_fmt(at_within)} at iteration {rows[idx].iteration}{best_txt}{interval_txt}{warn}",
                     final=True), metrics
    if within is None and ended:
        return Check(name, spec.metric, "<", spec.below, stat[-1], "fail", label, (rows[0].iteration, last),
                     rows[-1].quote(),
                     f"expected {spec.metric} {label} < {spec.below:g}; never reached in {len(rows)} records "
                     f"up to iteration {last}{best_txt}{interval_txt}{warn}", final=True), metrics
    if ended:
        # a finished log that stops short of ``within`` without crossing: the run did not converge
        return Check(name, spec.metric, "<", spec.below, stat[-1], "fail", label, (rows[0].iteration, last),
                     rows[-1].quote(),
                     f"expected {spec.metric} {label} < {spec.below:g}{within_txt}; the finished log ends at "
                     f"iteration {last} with {_fmt(stat[-1])}{best_txt}{interval_txt}{warn}", final=True), metrics
    return Check(name, spec.metric, "<", spec.below, stat[-1], "inconclusive", label,
                 (rows[0].iteration, last), rows[-1].quote(),
                 f"expected {spec.metric} {label} < {spec.below:g}{within_txt}; the log ends at iteration {last} "
                 f"with {_fmt(stat[-1])}{best_txt}{interval_txt}{warn}", final=False), metrics


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.6g}"
