"""The end-of-run tables: one per kind (serving, training, accuracy), then why failing rows failed.

One rendering, as text, for the end of a pytest run and for `pytest-deepseek report`.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..serving.failures import failure_lines as request_kind_lines
from ..verdict import GateResult
from .entries import passed_with_warnings
from .html.labels import ENDPOINT_HEADERS, endpoint_rows, load_label

if TYPE_CHECKING:
    from .collect import ResultCollector
    from .entries import CollectedResult

TITLE = "deepseek gate summary"
MIN_WIDTH = 180  # tables are never squeezed below this: a truncated figure is worse than a long line
VERDICT_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow", "error": "magenta"}


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _sig(value: Any) -> str:
    """Six significant digits: training thresholds like 0.0013 need them."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.6g}"
    return str(value)


def _stat(metrics: dict[str, Any], name: str, key: str) -> str:
    return _num((metrics.get(name) or {}).get(key), 1)


def _verdict_cell(verdict: str | None) -> str:
    verdict = str(verdict or "-")
    style = VERDICT_STYLE.get(verdict)
    return f"[{style}]{verdict.upper()}[/{style}]" if style else verdict.upper()


def serving_table(results: Sequence[GateResult], simulated: bool) -> Table:
    """One row per serving scenario, as the seeds' benchmark tables."""
    title = "serving" + (" (SIMULATED engine: not a release verdict)" if simulated else "")
    table = Table(title=title, title_justify="left", show_lines=False, box=box.SIMPLE_HEAD)
    for header, justify in (
        ("profile", "left"), ("scenario", "left"), ("conc/rate", "right"), ("done", "right"),
        ("in", "right"), ("out", "right"), ("in tok/s/node", "right"), ("out tok/s/node", "right"),
        ("TTFT p99 ms", "right"), ("TPOT p99 ms", "right"), ("failed", "right"), ("verdict", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for result in results:
        scenario = result.details.get("scenario") or {}
        metrics = result.metrics
        table.add_row(
            result.profile,
            result.case_id,
            _load_text(scenario),
            str(metrics.get("completed", "-")),
            str(scenario.get("input_len", "-")),
            str(scenario.get("output_len", "-")),
            _num(metrics.get("input_throughput_per_node")),
            _num(metrics.get("output_throughput_per_node")),
            _stat(metrics, "ttft_ms", "p99"),
            _stat(metrics, "tpot_ms", "p99"),
            str(metrics.get("failed", "-")),
            _verdict_cell(result.verdict),
        )
    return table


def _load_text(scenario: Mapping[str, Any]) -> str:
    """The scenario's load as a table cell: `r=RATE` (open loop), `b=BATCHxITERS` (batch), else its
    concurrency alone (the column says conc/rate)."""
    return load_label(scenario).removeprefix("c=")


# The figures of one profile in the cross-hardware table: (header, cell of a result).
_HARDWARE_COLUMNS: tuple[tuple[str, Callable[[GateResult], str]], ...] = (
    ("out tok/s/node", lambda r: _num(r.metrics.get("output_throughput_per_node"))),
    ("in tok/s/node", lambda r: _num(r.metrics.get("input_throughput_per_node"))),
    ("TTFT p99 ms", lambda r: _stat(r.metrics, "ttft_ms", "p99")),
    ("TPOT p99 ms", lambda r: _stat(r.metrics, "tpot_ms", "p99")),
    ("verdict", lambda r: _verdict_cell(r.verdict)),
)


def hardware_table(results: Sequence[GateResult], simulated: bool) -> Table | None:
    """The same scenarios side by side across profiles (hardware): one row per scenario (input x
    output x load, and its id when two scenarios share those), a column group per profile. None
    unless the results span more than one profile."""
    profiles = list(dict.fromkeys(result.profile for result in results))
    if len(profiles) < 2:
        return None

    def grid_key(result: GateResult) -> tuple[Any, Any, str]:
        scenario = result.details.get("scenario") or {}
        return scenario.get("input_len", "-"), scenario.get("output_len", "-"), _load_text(scenario)

    # A profile with two scenarios of the same lengths and load (chat and completions, two data
    # sets) would fold them into one row: their rows are told apart by scenario id.
    per_profile = Counter((result.profile, grid_key(result)) for result in results)
    shared = {key for (_, key), count in per_profile.items() if count > 1}
    cells: dict[tuple[Any, Any, str, str], dict[str, GateResult]] = {}
    for result in results:
        key = grid_key(result)
        cells.setdefault((*key, result.case_id if key in shared else ""), {})[result.profile] = result
    title = "serving across hardware" + (" (SIMULATED engine: not a release verdict)" if simulated else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    if shared:
        table.add_column("scenario", justify="left")
    for header in ("in", "out", "conc/rate"):
        table.add_column(header, justify="right")
    for profile in profiles:  # a group's first column carries its profile, a line above the figures' names
        for index, (header, _) in enumerate(_HARDWARE_COLUMNS):
            table.add_column(f"{profile if index == 0 else ''}\n{header}",
                             justify="left" if header == "verdict" else "right")
    for key in sorted(cells, key=_row_order):
        row = ([key[3]] if shared else []) + [str(part) for part in key[:3]]
        for profile in profiles:
            result = cells[key].get(profile)
            row += [cell(result) if result is not None else "-" for _, cell in _HARDWARE_COLUMNS]
        table.add_row(*row)
    return table


def endpoints_table(results: Sequence[GateResult], simulated: bool) -> Table | None:
    """The replicas of each scenario measured on several URLs side by side: one row per replica
    (requests, failures, output tok/s over the run window, TTFT p50/p99, warm-up requests), and one
    row for the URLs only woken up. None when no scenario had more than one endpoint."""
    shown = [r for r in results if len(r.details.get("endpoints") or ()) > 1]
    if not shown:
        return None
    title = "serving by endpoint" + (" (SIMULATED engine: not a release verdict)" if simulated else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("profile", "scenario", *ENDPOINT_HEADERS):
        table.add_column(header, justify="left" if header in ("profile", "scenario", "endpoint") else "right")
    for result in shown:
        for row in endpoint_rows(result.details["endpoints"]):
            table.add_row(result.profile, result.case_id, *row)
    return table


def _row_order(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    """Rows by input length, then output length (numbers first); loads keep the order they ran in."""
    return tuple((0, value) if isinstance(value, (int, float)) else (1, str(value)) for value in key[:2])


def training_table(results: Sequence[GateResult]) -> Table:
    """One row per training check."""
    table = Table(title="training", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("profile", "entry", "test", "check", "statistic", "threshold", "measured", "verdict"):
        table.add_column(header)
    for result in results:
        entry = str(result.details.get("entry") or "-") + (" (example)" if result.details.get("example") else "")
        for check in result.checks:
            table.add_row(
                result.profile,
                entry,
                str(result.details.get("aspect") or "-"),
                check.name,
                str(check.details.get("statistic") or "-"),
                f"{check.op} {_sig(check.threshold)}" if check.threshold is not None else "-",
                _sig(check.value),
                _verdict_cell(check.verdict),
            )
    return table


def accuracy_table(results: Sequence[GateResult]) -> Table:
    """One row per dataset, as OpenCompass's summary table plus reference and verdict."""
    simulated = any(r.simulated for r in results)
    title = "accuracy" + (" (SIMULATED engine: not a release verdict)" if simulated else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("profile", "dataset", "version", "metric", "mode", "score", "n", "reference", "verdict"):
        table.add_column(header)
    for result in results:
        metrics = result.metrics
        table.add_row(
            result.profile,
            str(result.details.get("dataset") or result.case_id),
            str(metrics.get("config_version") or "-"),
            str(metrics.get("metric") or "-"),
            str(metrics.get("mode") or "gen"),
            _num(metrics.get("score")),
            str(metrics.get("n", "-")),
            _reference_text(metrics) if metrics.get("reference") is not None else _min_text(result),
            _verdict_cell(result.verdict),
        )
    return table


def _reference_text(metrics: dict[str, Any]) -> str:
    tolerance = metrics.get("tolerance")
    return f"{_num(metrics.get('reference'))}" + (f" ± {_num(tolerance)}" if tolerance is not None else "")


def _min_text(result: GateResult) -> str:
    for check in result.checks:
        if check.threshold is not None:
            return f"{check.op or '>='} {_num(check.threshold)}"
    return "-"


def failure_lines(entries: Sequence["CollectedResult"]) -> list[str]:
    """For each result that did not pass: its test id, then its failure text (expected vs measured,
    problems, where the raw material is)."""
    lines: list[str] = []
    for entry in entries:
        if entry.result.passed:
            continue
        lines.append(f"{entry.result.verdict.upper()} {entry.nodeid}")
        lines.extend(f"  {line}" for line in entry.result.failure_text().splitlines()[1:])
    return lines


def warning_lines(entries: Sequence["CollectedResult"]) -> list[str]:
    """For each result that passed with warnings: its test id, then each warning."""
    lines: list[str] = []
    for entry in passed_with_warnings(entries):
        lines.append(f"PASS with warnings {entry.nodeid}")
        lines.extend(f"  warning: {warning}" for warning in entry.result.warnings)
    return lines


def request_failure_lines(results: Sequence[GateResult]) -> list[str]:
    """Failed requests of each serving scenario, by kind with example request ids (none when all went well)."""
    lines: list[str] = []
    for result in results:
        failures = result.details.get("failures") or {}
        described = request_kind_lines(failures)
        if described:
            lines.append(f"requests of {result.profile}:{result.case_id}:")
            lines.extend(f"  {line}" for line in described)
    return lines


def incomplete_lines(incomplete: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per test that started but left no result (the run stopped during it)."""
    lines = []
    for item in incomplete:
        recorded, planned = item.get("recorded"), item.get("planned")
        done = f": {recorded} of {planned} measured requests on disk" if recorded is not None else ""
        lines.append(f"INCOMPLETE {item.get('nodeid')}{done}; no result (the run stopped during it)")
    return lines


def table_width(columns: int) -> int:
    """The width tables are drawn at on a terminal of `columns`."""
    return max(MIN_WIDTH, columns)


def render_tables(entries: Sequence["CollectedResult"], results_path: Path | str, *, width: int = MIN_WIDTH,
                  notes: Sequence[str] = (), color: bool = False) -> str:
    """All tables, the failure explanations, where the results are, then `notes`, as text (with ANSI
    colours when `color`: only for a terminal, never for a log or a file)."""
    results = [entry.result for entry in entries]
    simulated = any(r.simulated for r in results)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None,
                      highlight=False)
    by_kind: dict[str, list[GateResult]] = {}
    for result in results:
        by_kind.setdefault(result.kind, []).append(result)
    if by_kind.get("serving"):
        console.print(serving_table(by_kind["serving"], simulated))
        across = hardware_table(by_kind["serving"], simulated)
        if across is not None:
            console.print(across)
        by_endpoint = endpoints_table(by_kind["serving"], simulated)
        if by_endpoint is not None:
            console.print(by_endpoint)
        for line in request_failure_lines(by_kind["serving"]):
            console.print(line, markup=False, soft_wrap=True)
    if by_kind.get("training"):
        console.print(training_table(by_kind["training"]))
    if by_kind.get("accuracy"):
        console.print(accuracy_table(by_kind["accuracy"]))
    for line in failure_lines(entries):
        console.print(line, markup=False)
    for line in warning_lines(entries):
        console.print(line, markup=False, soft_wrap=True)  # a warning names paths: kept on one line
    console.print(f"results: {results_path}", markup=False)
    for line in notes:
        console.print(line, markup=False, soft_wrap=True)  # a path cut in two cannot be copied
    return buffer.getvalue()


def render_summary(terminalreporter: Any, collector: "ResultCollector") -> None:
    """Write the tables into pytest's terminal summary."""
    writer = getattr(terminalreporter, "_tw", None)
    width = table_width(writer.fullwidth if writer is not None else 0)
    terminalreporter.write_sep("=", TITLE)
    text = render_tables(collector.results, collector.state.folder.path, width=width, notes=collector.notes(),
                         color=bool(getattr(writer, "hasmarkup", False)))
    for line in text.rstrip("\n").splitlines():
        terminalreporter.write_line(line)
