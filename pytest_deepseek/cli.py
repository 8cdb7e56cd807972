"""The `pytest-deepseek` command: work on a run's results folder without pytest.

    pytest-deepseek report RUN_DIR

rebuilds RUN_DIR/summary.json and RUN_DIR/test_result.csv from the records and evaluations the
run left (a run killed with `kill -9` included) and prints the tables a pytest run prints at its
end. Exit status: 0 when every result passed, 1 otherwise (a failure, an error, an unfinished
test, or nothing to report), 2 when RUN_DIR is not a run folder.
"""

from __future__ import annotations

import argparse
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
    report.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                        help="a run folder (deepseek-results/<run-id>), or a results folder whose "
                             "'latest' file names one")
    return parser


def report(run_dir: Path) -> int:
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
    columns = shutil.get_terminal_size().columns
    width = table_width(columns)
    print(f" {TITLE} ".center(columns, "="))
    print(render_tables(rebuilt.entries, run_dir, width=width, notes=rebuilt.notes()), end="")
    if not rebuilt.entries and not rebuilt.incomplete:
        print("no results to report")
    print(f"rebuilt {run_dir / 'summary.json'} ({len(rebuilt.entries)} result(s), "
          f"{len(rebuilt.incomplete)} unfinished)")
    return EXIT_PASSED if rebuilt.passed else EXIT_NOT_PASSED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args.run_dir)
    return EXIT_BAD_RUN_DIR  # argparse already refused unknown commands


if __name__ == "__main__":
    sys.exit(main())
