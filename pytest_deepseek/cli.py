"""The `pytest-deepseek` command: work on runs' results folders without pytest.

    pytest-deepseek report RUN_DIR [--html PATH]

rebuilds RUN_DIR/summary.json, RUN_DIR/test_result.csv and RUN_DIR/exports/ from the records and
evaluations the run left (a run killed with `kill -9` included), writes the HTML report when asked,
and prints the tables a pytest run prints at its end. Exit status: 0 when every result passed (and
the HTML report, if asked, was written), 1 otherwise (a failure, an error, an unfinished test, or
nothing to report), 2 when RUN_DIR is not a run folder.

    pytest-deepseek compare A B [--json PATH] [--tolerance METRIC=VALUE ...] [--confidence C]

compares run B with run A (the baseline) test by test: each metric's change with bounds from both
runs' noise and a verdict against its tolerance, then what differs between the runs' conditions.
A and B are run folders, results folders (their latest run) or names of saved baselines. Exit
status: 0 when no metric is significantly worse than its tolerance allows, 1 otherwise (or when a
run's figures cannot be trusted), 2 for bad input (not a run, no test in common, a bad tolerance).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_PASSED, EXIT_NOT_PASSED, EXIT_BAD_RUN_DIR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-deepseek", description="pytest-deepseek results tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report", help="rebuild a run's summary.json, test_result.csv and tables from its records",
        description="Rebuild RUN_DIR/summary.json and RUN_DIR/test_result.csv from the run's records and "
                    "evaluations, then print the end-of-run tables. Exit status 0 when every result "
                    "passed, 1 otherwise, 2 for a folder that is not a run.")
    report.add_argument("--html", type=Path, default=None, metavar="PATH",
                        help="also write the run's self-contained HTML report to PATH "
                             "(needs pip install \"pytest-deepseek[html]\")")
    report.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                        help="a run folder (deepseek-results/<run-id>), or a results folder whose "
                             "'latest' file names one")
    _compare_parser(commands)
    return parser


def _compare_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    compare = commands.add_parser(
        "compare", help="compare run B with run A (a baseline): changes, their bounds, regressions",
        description="Compare run B with run A test by test: every metric's change, one-sided bounds of the "
                    "change from both runs' noise, and a verdict against its tolerance (FAIL: worse than "
                    "allowed beyond the noise; PASS: within it beyond the noise; INCONCLUSIVE: the runs cannot "
                    "tell); then the conditions that differ between the runs. Exit status 0 when nothing "
                    "regressed, 1 when something did (or a run's figures cannot be trusted), 2 for bad input.")
    for name, what in (("a", "the baseline"), ("b", "the run compared with it")):
        compare.add_argument(name, metavar=name.upper(),
                             help=f"{what}: a run folder, a results folder (its latest run) or a saved baseline's name")
    compare.add_argument("--json", dest="json_path", type=Path, metavar="PATH",
                         help="also write the comparison as JSON to PATH")
    compare.add_argument("--results-dir", type=Path, default=Path("deepseek-results"), metavar="DIR",
                         help="where baselines are looked up by name (DIR/baselines/NAME; default: deepseek-results)")
    compare.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                         help="a metric's tolerance, a percent (ttft_ms.p99=10%%) or an absolute number "
                              "(score=1.0); repeatable. Defaults: " + _default_tolerances())
    compare.add_argument("--confidence", type=float, metavar="C",
                         help="one-sided confidence of the bounds (default: each test's own, 0.95 unless the "
                              "thresholds say otherwise)")


def _default_tolerances() -> str:
    from .regression.spec import DEFAULT_TOLERANCES, FAMILY_TOLERANCES

    named = ", ".join(f"{k}={v}" for k, v in DEFAULT_TOLERANCES.items())
    families = ", ".join(f"{k}={v}" for k, v in FAMILY_TOLERANCES.items())
    return f"{named}; any other metric by its family: {families}".replace("%", "%%")


def report(run_dir: Path, html: Path | None = None) -> int:
    """`pytest-deepseek report RUN_DIR`: rebuild, write, print; the exit status."""
    from .report.rebuild import RunDirError, find_run_dir, rebuild_run, write_rebuilt
    from .report.terminal import TITLE, render_tables, table_width

    try:
        run_dir = find_run_dir(run_dir)
    except RunDirError as exc:
        print(f"pytest-deepseek: {exc}", file=sys.stderr)
        return EXIT_BAD_RUN_DIR
    rebuilt = rebuild_run(run_dir)
    write_rebuilt(run_dir, rebuilt)
    html_written = _html_report(run_dir, html) if html is not None else True
    columns = shutil.get_terminal_size().columns
    width = table_width(columns)
    print(f" {TITLE} ".center(columns, "="))
    print(render_tables(rebuilt.entries, run_dir, width=width, notes=rebuilt.notes(), color=sys.stdout.isatty()),
          end="")
    if not rebuilt.entries and not rebuilt.incomplete:
        print("no results to report")
    print(f"rebuilt {run_dir / 'summary.json'} ({len(rebuilt.entries)} result(s), "
          f"{len(rebuilt.incomplete)} unfinished)")
    return EXIT_PASSED if rebuilt.passed and html_written else EXIT_NOT_PASSED


def _html_report(run_dir: Path, out: Path) -> bool:
    """Write the HTML report of `run_dir` to `out`; False (said on stderr) when it cannot be written."""
    from .report.html import HtmlReportError, write_html_report

    try:
        path = write_html_report(run_dir, out)
    except HtmlReportError as exc:
        print(f"pytest-deepseek: no HTML report: {exc}", file=sys.stderr)
        return False
    print(f"HTML report {path}")
    return True


def compare(a: str, b: str, *, json_path: Path | None = None, results_dir: Path = Path("deepseek-results"),
            tolerances: Sequence[str] = (), confidence: float | None = None) -> int:
    """`pytest-deepseek compare A B`: read both runs, compare, print, write the JSON; the exit status."""
    from .regression.baseline import BaselineError, resolve
    from .regression.compare import compare_runs
    from .regression.load import load_run
    from .regression.spec import RegressionSpec
    from .regression.table import render_comparison
    from .report.terminal import table_width

    try:
        spec = RegressionSpec.of(_tolerance_map(tolerances), confidence=confidence)
        run_a, run_b = (load_run(resolve(x, results_dir), label=x) for x in (a, b))
    except (BaselineError, ValueError) as exc:
        print(f"pytest-deepseek compare: {exc}", file=sys.stderr)
        return EXIT_BAD_RUN_DIR
    comparison = compare_runs(run_a, run_b, spec)
    print(render_comparison(comparison, width=table_width(shutil.get_terminal_size().columns)), end="")
    if json_path is not None:
        json_path.write_text(json.dumps(comparison.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    if not comparison.tests:
        print(f"pytest-deepseek compare: {a} and {b} have no test in common", file=sys.stderr)
        return EXIT_BAD_RUN_DIR
    return EXIT_NOT_PASSED if comparison.regressed else EXIT_PASSED


def _tolerance_map(items: Sequence[str]) -> dict[str, str | float]:
    """`METRIC=VALUE` arguments -> the `regression:` mapping they stand for (ValueError for a bad one)."""
    out: dict[str, str | float] = {}
    for item in items:
        metric, sep, value = item.partition("=")
        if not sep or not metric.strip() or not value.strip():
            raise ValueError(f"--tolerance {item!r}: expected METRIC=VALUE (ttft_ms.p99=10% or score=1.0)")
        text = value.strip()
        try:
            out[metric.strip()] = text if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"--tolerance {item!r}: {text!r} is neither a percent nor a number") from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args.run_dir, args.html)
    if args.command == "compare":
        return compare(args.a, args.b, json_path=args.json_path, results_dir=args.results_dir,
                       tolerances=args.tolerance, confidence=args.confidence)
    return EXIT_BAD_RUN_DIR  # argparse already refused unknown commands


if __name__ == "__main__":
    sys.exit(main())
