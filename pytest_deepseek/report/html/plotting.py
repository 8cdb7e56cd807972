"""matplotlib, imported on demand, and figures turned into SVG fragments that sit inline in a page.

The plotting library is an optional extra: without it, building a report is one clear error that
names the install command. Figures are drawn on `matplotlib.figure.Figure` objects (no pyplot, no
global figure state) with a fixed style, and serialised as SVG with text kept as text, no XML
prolog, no DOCTYPE, no namespace URLs and element ids made unique per figure, so many of them can
share one HTML document that needs nothing from the network.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_COMMAND = 'pip install "pytest-deepseek[html]"'

# Colours of the page and of the figures (one palette for both).
VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#9a6700", "error": "#8250df"}
SERIES_COLOURS = ("#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#57606a", "#9a6700", "#1b7c83")
THRESHOLD_COLOUR = "#cf222e"
WINDOW_COLOUR = "#0969da"

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
    "svg.hashsalt": "pytest-deepseek",  # the same figure gives the same SVG
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 72,
}
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_IDS = re.compile(r'\bid="([^"]+)"')


class HtmlReportError(Exception):
    """The HTML report cannot be built (the plotting library is missing, the run folder is unusable)."""


def require_matplotlib() -> None:
    """Import matplotlib, or raise `HtmlReportError` saying how to install it."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        raise HtmlReportError(f"the HTML report needs matplotlib, which is not installed ({exc}); "
                              f"install it with: {INSTALL_COMMAND}") from None


@contextmanager
def plot_style() -> Iterator[None]:
    """The report's figure style, for the duration of the block (the caller's settings are restored)."""
    require_matplotlib()
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


def plain(text: object) -> str:
    """`text` as matplotlib should print it: a "$" is a dollar sign, not the start of mathtext."""
    return str(text).replace("$", r"\$")


def y_limit(data_max: float, thresholds: list[float], reach: float = 3.0) -> float:
    """The top of a y axis starting at 0: room above the data and the thresholds within `reach`
    times its maximum (one far away would flatten the data; `off_scale_note` says it instead)."""
    shown = [t for t in thresholds if t <= reach * max(data_max, 0.0)] if data_max > 0 else list(thresholds)
    return 1.15 * max([data_max, *shown, 1e-9])


def off_scale_note(ax: Any, labels: list[str]) -> None:
    """Say, in the corner of the axes, which thresholds lie above the plotted range."""
    if labels:
        ax.annotate(plain("above the scale: " + "; ".join(labels)), xy=(0.99, 0.98), xycoords="axes fraction",
                    ha="right", va="top", color=THRESHOLD_COLOUR, fontsize=8)


def log_scale(ax: Any, axis: str = "y") -> None:
    """A logarithmic axis labelled with plain numbers at the decades only (minor labels crowd)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(NullFormatter())


def new_figure(width_in: float, height_in: float, nrows: int = 1, ncols: int = 1,
               **subplot_kw: Any) -> tuple["Figure", Any]:
    """A figure and its axes (one `Axes`, or an array when nrows or ncols > 1), laid out tightly."""
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def svg_fragment(fig: "Figure") -> str:
    """The figure as an `<svg>` element for inline use: no prolog, comments or namespace URLs, ids
    prefixed so that figures in one document never share one."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = _COMMENTS.sub("", _PROLOG.sub("", buffer.getvalue(), count=1))
    text = _NAMESPACES.sub("", text).replace("xlink:href=", "href=")
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    # ids named after the figure's content: the same figure gives the same text, two differ
    return _prefix_ids(text, "f" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10] + "-")


def _prefix_ids(svg: str, prefix: str) -> str:
    """Every id defined in `svg`, and every reference to one (`#id`), with `prefix` before it."""
    ids = set(_IDS.findall(svg))
    if not ids:
        return svg

    def rename(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"{match.group(1)}{prefix}{name}" if name in ids else match.group(0)

    svg = re.sub(r'(\bid=")([^"]+)(?=")', rename, svg)
    return re.sub(r'((?:url\(|href=")#)([^)"]+)', rename, svg)
