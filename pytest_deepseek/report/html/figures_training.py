"""Training figures: the loss curve against its threshold (with `within` and the crossing point),
and each speed bound's metric over iterations with the statistic that decided it. Each returns an `<svg>`."""

from __future__ import annotations

from typing import Any

from ...verdict import Check
from .labels import sig
from .model import Curve, TrainingSeries
from .plotting import SERIES_COLOURS, THRESHOLD_COLOUR, WINDOW_COLOUR, log_scale, new_figure, plain, svg_fragment

_LOG_SPAN = 30.0  # a positive series spanning more than this factor is drawn on a log axis


def _draw_curve(ax: Any, curve: Curve, colour: str, label: str) -> None:
    """The values as a line; merged points as a band from their min to their max."""
    if curve.thinned:
        ax.fill_between(curve.x, curve.lo, curve.hi, color=colour, alpha=0.2, lw=0,
                        label=plain(f"{label} (min-max of {curve.points:,} records in {curve.x.size} points)"))
        ax.plot(curve.x, curve.y, color=colour, lw=0.8, alpha=0.8)
    else:
        ax.plot(curve.x, curve.y, color=colour, lw=0.8, alpha=0.8, label=plain(label))


def _log_scale_if_wide(ax: Any, *values: float | None) -> None:
    given = [v for v in values if v is not None]
    if given and min(given) > 0 and max(given) / min(given) > _LOG_SPAN:
        log_scale(ax, "y")


def loss_curve(title: str, series: TrainingSeries, check: Check, crossing: int | None) -> str | None:
    """The converge metric over iterations, its statistic, the threshold, `within` and the first
    sustained crossing (None when the log had no such metric)."""
    curve = series.curves.get(check.metric)
    if curve is None or not curve.x.size:
        return None
    fig, ax = new_figure(8.5, 3.4)
    _draw_curve(ax, curve, SERIES_COLOURS[0], f"{check.metric} (raw)")
    statistic = str(check.details.get("statistic") or "")
    if series.statistic is not None:
        ax.plot(series.statistic.x, series.statistic.y, color=SERIES_COLOURS[1], lw=1.4, label=plain(statistic))
    if check.threshold is not None:
        ax.axhline(float(check.threshold), color=THRESHOLD_COLOUR, lw=1.2, ls="--",
                   label=f"threshold {check.op} {sig(check.threshold)}")
    if series.within is not None:
        ax.axvline(series.within, color="#57606a", lw=1.2, ls=":", label=f"within {series.within:,}")
    if crossing is not None and check.value is not None:
        ax.plot([crossing], [float(check.value)], marker="o", ms=7, mfc="none", mew=2, color=SERIES_COLOURS[2],
                linestyle="none", label=f"crossing: iteration {crossing:,}")
    return _finished(fig, ax, curve, check, title)


def _finished(fig: Any, ax: Any, curve: Curve, check: Check, title: str) -> str:
    """Axes scaled and labelled, titled with the verdict, the legend outside: the figure as SVG."""
    _log_scale_if_wide(ax, float(curve.lo.min()), float(curve.hi.max()),
                       None if check.threshold is None else float(check.threshold))
    ax.set_xlabel("iteration")
    ax.set_ylabel(plain(check.metric))
    ax.set_title(plain(f"{title} [{check.verdict.upper()}]"))
    fig.legend(loc="outside right upper")
    return svg_fragment(fig)


def speed_curve(title: str, series: TrainingSeries, check: Check) -> str | None:
    """A floor's or ceiling's metric over iterations: warmup shaded grey, the iterations judged
    shaded blue, the deciding statistic and the threshold as lines (None without the metric)."""
    curve = series.curves.get(check.metric)
    if curve is None or not curve.x.size:
        return None
    fig, ax = new_figure(8.5, 3.0)
    _draw_curve(ax, curve, SERIES_COLOURS[0], check.metric)
    if series.warmup_iters and "mem" not in check.metric:
        ax.axvspan(float(curve.x.min()), series.warmup_iters, color="#57606a", alpha=0.12, lw=0,
                   label=f"warmup ({series.warmup_iters} iterations)")
    span = check.details.get("iterations")
    if isinstance(span, (list, tuple)) and len(span) == 2:
        ax.axvspan(span[0], span[1], color=WINDOW_COLOUR, alpha=0.06, lw=0, label=f"judged: {span[0]:,}-{span[1]:,}")
    statistic = str(check.details.get("statistic") or "statistic")
    if check.value is not None:
        ax.axhline(float(check.value), color=SERIES_COLOURS[1], lw=1.4,
                   label=plain(f"{statistic} = {sig(check.value)}"))
    if check.threshold is not None:
        ax.axhline(float(check.threshold), color=THRESHOLD_COLOUR, lw=1.2, ls="--",
                   label=f"{'floor' if check.op == '>=' else 'ceiling'} {check.op} {sig(check.threshold)}")
    return _finished(fig, ax, curve, check, title)
