"""A run comparison as text: one row per test and metric, then what could not be compared, what
differs between the runs' conditions, and the tests only one run has."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table

from ..report.terminal import MIN_WIDTH, VERDICT_STYLE
from .compare import RunComparison, format_value

SIGNIFICANT_STYLE = {"worse": "red", "better": "green"}


def _styled(text: str, style: str | None) -> str:
    return f"[{style}]{text}[/{style}]" if style else text


def metrics_table(comparison: RunComparison) -> Table:
    """test, metric, A, B, change, interval, significant?, verdict."""
    title = f"regression: B = {comparison.b.label} against A = {comparison.a.label}"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in (("test", "left"), ("metric", "left"), ("A", "right"), ("B", "right"),
                            ("change", "right"), ("interval", "right"), ("allowed", "right"),
                            ("significant?", "left"), ("verdict", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for test in comparison.tests:
        for m in test.metrics:
            table.add_row(test.label, m.metric, format_value(m.a.value), format_value(m.b.value),
                          m.format_change(m.shown_change), m.format_interval(), m.format_change(m.allowed),
                          _styled(m.significant, SIGNIFICANT_STYLE.get(m.significant)),
                          _styled(m.verdict.upper(), VERDICT_STYLE.get(m.verdict)))
    return table


def fingerprint_table(comparison: RunComparison) -> Table:
    """field, A, B, where."""
    table = Table(title="what differs between the runs", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("field", "A", "B", "where"):
        table.add_column(header, overflow="fold")
    for difference in comparison.fingerprint:
        table.add_row(difference.field, ", ".join(difference.a), ", ".join(difference.b), difference.where)
    return table


def undecided_lines(comparison: RunComparison) -> list[str]:
    """Why a test could not be compared, and why each undecided metric could not be told."""
    lines = []
    for test in comparison.tests:
        for problem in test.problems:
            lines.append(f"ERROR {test.label}: {problem}")
        if not test.problems and not test.metrics:
            lines.append(f"NOT COMPARED {test.label}: no figure of this test has a tolerance")
        for m in test.metrics:
            if m.verdict == "inconclusive":
                lines.append(f"INCONCLUSIVE {test.label} {m.metric}: {m.why_undecided()}")
    return lines


def render_comparison(comparison: RunComparison, *, width: int = MIN_WIDTH, color: bool = False) -> str:
    """Every table and note of a comparison, as text (ANSI colours only when `color`)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None,
                      highlight=False)
    if comparison.tests:
        console.print(metrics_table(comparison))
    for line in undecided_lines(comparison):
        console.print(line, markup=False, soft_wrap=True)
    if comparison.fingerprint:
        console.print(fingerprint_table(comparison))
    else:
        console.print("the runs were measured under the same recorded conditions", markup=False)
    for nodeid in comparison.only_a:
        console.print(f"only in A: {nodeid}", markup=False, soft_wrap=True)
    for nodeid in comparison.only_b:
        console.print(f"only in B: {nodeid}", markup=False, soft_wrap=True)
    confidence = comparison.spec.confidence
    level = f"{confidence:.0%}" if confidence else "each test's own confidence"
    console.print(f"change: B against A; interval: one-sided bounds of the change at {level} from both runs' "
                  f"noise; FAIL when worse than allowed beyond the noise, PASS when within it beyond the noise",
                  markup=False, soft_wrap=True)
    return buffer.getvalue()
