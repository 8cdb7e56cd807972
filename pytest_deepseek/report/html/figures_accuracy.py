"""Accuracy figure: each dataset's score with its confidence interval, its `min:` and its reference
(and the reference less the tolerance). Returns an `<svg>`."""

from __future__ import annotations

from collections.abc import Sequence

from ...verdict import GateResult
from .plotting import SERIES_COLOURS, THRESHOLD_COLOUR, VERDICT_COLOURS, new_figure, plain, svg_fragment


def scores(profile: str, results: Sequence[GateResult]) -> str | None:
    """One row per dataset: the score (coloured by verdict) with its interval, the minimum as a red
    tick, the reference as a black diamond and the reference less the tolerance as a red tick."""
    rows = [r for r in results if r.metrics.get("score") is not None]
    if not rows:
        return None
    fig, ax = new_figure(7.0, 1.0 + 0.35 * len(rows))
    drawn: set[str] = set()

    def once(label: str) -> str | None:
        if label in drawn:
            return None
        drawn.add(label)
        return label

    for y, result in enumerate(rows):
        metrics = result.metrics
        score = float(metrics["score"])
        interval = metrics.get("interval")
        if isinstance(interval, (list, tuple)) and len(interval) == 2 and None not in interval:
            ax.errorbar([score], [y], xerr=[[score - float(interval[0])], [float(interval[1]) - score]], capsize=3,
                        color=SERIES_COLOURS[0], lw=1, label=once(f"{_percent(metrics.get('confidence'))} interval"))
        ax.plot([score], [y], marker="o", ms=6, linestyle="none", color=VERDICT_COLOURS.get(result.verdict, "#000"),
                label=once("score"))
        for check in result.checks:
            if check.op == ">=" and check.threshold is not None:
                ax.plot([float(check.threshold)], [y], marker="|", ms=14, mew=2, linestyle="none",
                        color=THRESHOLD_COLOUR, label=once("min"))
        reference = metrics.get("reference")
        if reference is not None:
            ax.plot([float(reference)], [y], marker="D", ms=5, linestyle="none", color="#24292f",
                    label=once("reference"))
            tolerance = metrics.get("tolerance")
            if tolerance:
                ax.plot([float(reference) - float(tolerance)], [y], marker="|", ms=14, mew=2, linestyle="none",
                        color=THRESHOLD_COLOUR, alpha=0.6, label=once("reference - tolerance"))
    ax.set_yticks(range(len(rows)), [plain(r.details.get("dataset") or r.case_id) for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("score (%)")
    ax.set_title(plain(f"{profile}: accuracy"))
    fig.legend(loc="outside right upper")
    return svg_fragment(fig)


def _percent(confidence: object) -> str:
    return f"{float(confidence):.0%}" if isinstance(confidence, (int, float)) else "confidence"
