"""Serving figures: output tokens/s per node against output length, TTFT and TPOT distributions,
and each scenario's token rate over time with its steady-state window. Each returns an `<svg>`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...regression.spec import CHECK_PREFIX
from ...verdict import Check, GateResult
from .labels import load_label, num, series_order
from .model import BoxStats, RateSeries
from .plotting import (SERIES_COLOURS, THRESHOLD_COLOUR, WINDOW_COLOUR, log_scale, new_figure, off_scale_note, plain,
                       svg_fragment, y_limit)

PER_NODE = "output_throughput_per_node"


def _checks_on(result: GateResult, metric: str) -> list[Check]:
    """The floors and ceilings on `metric` (not the regression checks, whose threshold is a change)."""
    return [c for c in result.checks if c.metric == metric and not c.name.startswith(CHECK_PREFIX)]


def _baseline_of(result: GateResult, metric: str) -> float | None:
    """The baseline's figure of `metric` when the run was compared with one."""
    for check in result.checks:
        if check.name == f"{CHECK_PREFIX}{metric}" and isinstance(check.details.get("baseline"), (int, float)):
            return float(check.details["baseline"])
    return None


def throughput_by_output_length(profile: str, results: Sequence[GateResult]) -> str | None:
    """Output tok/s per node against output length, one line per input length and load; error
    bars are the floor's confidence bounds, red ticks the floors (None without figures)."""
    groups: dict[tuple[object, str], list[GateResult]] = {}
    for result in results:
        scenario = result.details.get("scenario") or {}
        if result.metrics.get(PER_NODE) is not None and isinstance(scenario.get("output_len"), (int, float)):
            groups.setdefault((scenario.get("input_len"), load_label(scenario)), []).append(result)
    if not groups:
        return None
    fig, ax = new_figure(7.0, 3.6)
    order = sorted(groups, key=lambda key: series_order(groups[key][0].details.get("scenario") or {}))
    lengths: list[float] = []
    floors: list[tuple[float, float]] = []
    baseline: list[tuple[float, float]] = []
    top = 0.0
    for index, key in enumerate(order):
        rows = sorted(groups[key], key=lambda r: float((r.details.get("scenario") or {})["output_len"]))
        x = np.array([float(r.details["scenario"]["output_len"]) for r in rows])
        y = np.array([float(r.metrics[PER_NODE]) for r in rows])
        low, high = _bounds(rows, y)
        ax.errorbar(x, y, yerr=[y - low, high - y], color=SERIES_COLOURS[index % len(SERIES_COLOURS)], marker="o",
                    ms=4, capsize=3, label=plain(f"in {key[0]}, {key[1]}"))
        lengths += list(x)
        top = max(top, float(high.max()))
        floors += [(xi, float(c.threshold)) for xi, row in zip(x, rows) for c in _checks_on(row, PER_NODE)
                   if c.threshold is not None and c.op == ">="]
        baseline += [(xi, value) for xi, row in zip(x, rows) if (value := _baseline_of(row, PER_NODE)) is not None]
    if baseline:
        ax.plot([p[0] for p in baseline], [p[1] for p in baseline], marker="D", ms=6, mfc="none", mew=1.5,
                color="#57606a", linestyle="none", label="baseline")
        top = max(top, max(p[1] for p in baseline))
    ylim = y_limit(top, [f for _, f in floors])
    shown = [(xi, f) for xi, f in floors if f <= ylim]
    if shown:
        ax.plot([p[0] for p in shown], [p[1] for p in shown], marker="_", ms=16, mew=2, color=THRESHOLD_COLOUR,
                linestyle="none", label="floor")
    off_scale = Counter(f for _, f in floors if f > ylim)
    off_scale_note(ax, [f"floor {num(f)}" + (f" ({n} scenarios)" if n > 1 else "") for f, n in off_scale.items()])
    if lengths and max(lengths) / max(min(lengths), 1.0) >= 4:
        ax.set_xscale("log", base=2)
    ticks = sorted(set(lengths))
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.set_xlabel("output length (tokens)")
    ax.set_ylabel("output tok/s per node")
    ax.set_ylim(0, ylim)
    ax.set_title(plain(f"{profile}: output throughput per node by output length"))
    fig.legend(loc="outside right upper")
    return svg_fragment(fig)


def _bounds(rows: Sequence[GateResult], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confidence bounds of each row's per-node figure (the value itself where there are none)."""
    low, high = y.copy(), y.copy()
    for i, row in enumerate(rows):
        bounds = [(float(c.low), float(c.high)) for c in _checks_on(row, PER_NODE)
                  if c.low is not None and c.high is not None]
        if bounds:
            low[i], high[i] = min(bounds[0][0], y[i]), max(bounds[0][1], y[i])
    return low, high


def latency_distributions(profile: str, rows: Sequence[tuple[GateResult, BoxStats | None, BoxStats | None]]
                          ) -> str | None:
    """TTFT and TPOT of every scenario of a profile as box plots (whiskers p1..p99, box p25..p75,
    median, mean), with the ceilings the scenarios set on them."""
    if not any(ttft or tpot for _, ttft, tpot in rows):
        return None
    fig, axes = new_figure(8.0, 1.2 + 0.32 * len(rows), 1, 2, sharey=True)
    labels = [plain(r.case_id) for r, _, _ in rows]
    for ax, (metric, title), column in zip(axes, (("ttft_ms", "TTFT (ms)"), ("tpot_ms", "TPOT (ms)")), (1, 2)):
        boxes = [(position, box) for position, row in enumerate(rows) if (box := row[column]) is not None]
        _draw_boxes(ax, boxes)
        ceilings = [(position, c.threshold) for position, (result, _, _) in enumerate(rows)
                    for c in result.checks if c.metric.startswith(metric + ".") and c.op == "<="
                    and c.threshold is not None]
        for position, threshold in ceilings:
            ax.plot([threshold], [position], marker="|", ms=14, mew=2, color=THRESHOLD_COLOUR, linestyle="none")
        # a ceiling far above the requests would squash them on a linear axis
        values = [b.p1 for _, b in boxes] + [b.p99 for _, b in boxes] + [float(c) for _, c in ceilings]
        if values and min(values) > 0 and max(values) / min(values) > 30:
            log_scale(ax, "x")
        ax.set_title(title + (", red: ceiling" if ceilings else ""))
    axes[0].set_yticks(range(len(rows)), labels)
    axes[0].invert_yaxis()
    fig.suptitle(plain(f"{profile}: latency per request (whiskers p1-p99, box p25-p75, triangle mean)"))
    return svg_fragment(fig)


def _draw_boxes(ax: Any, boxes: Sequence[tuple[int, BoxStats]]) -> None:
    """Horizontal boxes from precomputed statistics, each at its row."""
    if not boxes:
        return
    stats = [{"whislo": b.p1, "q1": b.p25, "med": b.p50, "q3": b.p75, "whishi": b.p99, "mean": b.mean}
             for _, b in boxes]
    style: dict[str, Any] = dict(
        positions=[position for position, _ in boxes], showmeans=True, showfliers=False, widths=0.6,
        patch_artist=True, boxprops={"facecolor": "#ddf4ff", "edgecolor": WINDOW_COLOUR},
        medianprops={"color": "#bc4c00"},
        meanprops={"marker": "^", "markerfacecolor": "#57606a", "markeredgecolor": "#57606a", "ms": 4})
    try:
        ax.bxp(stats, orientation="horizontal", **style)
    except TypeError:  # matplotlib before 3.10
        ax.bxp(stats, vert=False, **style)


def rate_over_time(result: GateResult, rate: RateSeries) -> str:
    """A scenario's output tok/s per node over its run, the steady-state window shaded, the gate's
    figure and the per-node floor or ceiling as lines."""
    fig, ax = new_figure(5.4, 2.6)
    ax.step(rate.t_s, rate.per_node, where="post", color="#57606a", lw=1,
            label=f"per {num(rate.bucket_s, 3)} s bucket")
    if rate.steady is not None:
        ax.axvspan(rate.steady[0], rate.steady[1], color=WINDOW_COLOUR, alpha=0.12, lw=0, label="steady-state window")
    figure = result.metrics.get(PER_NODE)
    if figure is not None:
        window = result.metrics.get("window_used") or "judged"
        ax.axhline(float(figure), color=WINDOW_COLOUR, lw=1.2, ls="--", label=plain(f"gate figure ({window} window)"))
    bounds = [(c.op, float(c.threshold)) for c in _checks_on(result, PER_NODE) if c.threshold is not None]
    data_max = max(float(rate.per_node.max()) if rate.per_node.size else 0.0, float(figure or 0.0))
    ylim = y_limit(data_max, [threshold for _, threshold in bounds])
    for op, threshold in bounds:
        if threshold <= ylim:
            ax.axhline(threshold, color=THRESHOLD_COLOUR, lw=1.2, label=f"{op} {num(threshold)}")
    off_scale_note(ax, [f"{op} {num(threshold)}" for op, threshold in bounds if threshold > ylim])
    ax.set_xlim(0, float(rate.t_s[-1] + rate.bucket_s) if rate.t_s.size else 1.0)
    ax.set_ylim(0, ylim)
    ax.set_xlabel("seconds since the first measured request")
    ax.set_ylabel("output tok/s per node")
    ax.set_title(plain(f"{result.case_id} [{result.verdict.upper()}]"))
    fig.legend(loc="outside lower center", ncols=2)
    return svg_fragment(fig)

