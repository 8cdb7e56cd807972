"""Collects per-test results on the controlling process and writes them as they arrive.

Tests put their `GateResult` in `item.stash[RESULT_KEY]`; the plugin copies its JSON onto the test
report (attribute `deepseek_result`, which survives xdist's report serialisation); this collector,
registered as a plugin on the controller only, receives every report, turns it back into a
`GateResult`, rewrites `summary.json` and appends to `test_result.csv` right away, so a killed run
keeps what it measured (and `pytest-deepseek report` can rebuild both from the records).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..verdict import GateResult
from .entries import CollectedResult, csv_row, summary_document

if TYPE_CHECKING:
    from ..session import RunState

RESULT_KEY = pytest.StashKey[GateResult]()
RESULT_ATTR = "deepseek_result"
CARRIED_ATTR = "deepseek_carried"  # set on the report of a result carried over in a continued run


class ResultCollector:
    """A plugin object living on the controller: gathers results, writes files, feeds the summary.

    summary.json is written when the session starts (the run header is on disk before the first
    test), then after every result. In a continued run it starts with the results the run already
    had; a carried-over result replaces its entry in place and adds no CSV row. On Ctrl-C the
    summary says the run was interrupted, and the terminal summary says where its partial results are.
    """

    def __init__(self, state: "RunState") -> None:
        self.state = state
        self.results: list[CollectedResult] = [CollectedResult.from_json(e) for e in state.carried.values()]
        self.active = False  # a gate run: the summary is kept from the start
        self.interrupted = False

    def add(self, report: pytest.TestReport, result: GateResult, carried: bool = False) -> None:
        """Record one test's result and write it out."""
        entry = CollectedResult(report.nodeid, report.outcome, result)
        where = next((i for i, e in enumerate(self.results) if e.nodeid == entry.nodeid), None)
        if where is None:
            self.results.append(entry)
        else:
            self.results[where] = entry
        if result.kind == "serving" and not carried:
            if where is None:
                self.state.folder.append_csv_row(csv_row(entry))
            else:  # measured again in a continued run: its earlier row goes
                self.state.folder.write_csv([csv_row(e) for e in self.results if e.result.kind == "serving"])
        self.write_summary()

    def summary(self) -> dict[str, Any]:
        """The summary.json document."""
        run = self.state.run_header()
        if self.interrupted:
            run["interrupted"] = True
        return summary_document(run, self.results)

    def write_summary(self) -> None:
        """Rewrite summary.json (atomic)."""
        self.state.folder.write_summary(self.summary())

    def notes(self) -> list[str]:
        """Lines said after the tables: where an interrupted run's partial results are."""
        if not self.interrupted:
            return []
        path = self.state.folder.path
        return [f"run interrupted: partial results in {path}",
                "  (the test that was running, if any, left its records but no result)",
                f"  rebuild the summary from the records: pytest-deepseek report {path}",
                f"  continue the run: the same command with --deepseek-resume={path}"]

    # -- hooks ---------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        settings = self.state.settings
        if not settings.gate_requested or session.config.option.collectonly:
            return
        self.active = True
        if settings.resume is not None:  # the CSV holds the carried results only, whatever a kill left
            self.state.folder.write_csv([csv_row(e) for e in self.results if e.result.kind == "serving"])
        self.write_summary()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, RESULT_ATTR, None)
        if isinstance(data, dict):
            self.add(report, GateResult.from_json(data), carried=bool(getattr(report, CARRIED_ATTR, False)))

    def pytest_keyboard_interrupt(self) -> None:
        if self.active or self.results:
            self.interrupted = True
            self.write_summary()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results and not self.interrupted:
            return
        from .terminal import render_summary

        render_summary(terminalreporter, self)
        if self.state.settings.html is not None:
            self._write_html(terminalreporter, self.state.settings.html)

    def _write_html(self, terminalreporter: Any, out: Path) -> None:
        """The HTML report of the run (summary.json is current here, an interrupted run's too)."""
        from .html import HtmlReportError, write_html_report

        try:
            path = write_html_report(self.state.folder.path, out)
        except HtmlReportError as exc:
            terminalreporter.write_line(f"deepseek: no HTML report: {exc}", red=True)
            return
        except Exception as exc:  # noqa: BLE001 - the run's results are on disk: say so, do not crash
            terminalreporter.write_line(f"deepseek: no HTML report ({type(exc).__name__}: {exc}); rebuild it "
                                        f"with: pytest-deepseek report {self.state.folder.path} --html {out}",
                                        red=True)
            return
        terminalreporter.write_line(f"deepseek: HTML report {path}")

    def pytest_unconfigure(self) -> None:
        if self.active or self.results:
            self.write_summary()
        if any(entry.result.kind == "serving" for entry in self.results):
            self._write_exports()

    def _write_exports(self) -> None:
        """The files other tools read; a failure is said on stderr (the results are on disk and
        `pytest-deepseek report` writes them again), never a crash at the end of the session."""
        from .exports import write_exports  # numpy and the gates: not at plugin import

        try:
            write_exports(self.state.folder.path)
        except Exception as exc:  # noqa: BLE001
            print(f"deepseek: exports not written ({type(exc).__name__}: {exc}); write them with: "
                  f"pytest-deepseek report {self.state.folder.path}", file=sys.stderr)
