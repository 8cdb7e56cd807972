"""Writing the HTML report of a run folder: read it, draw it, write one self-contained file."""

from __future__ import annotations

import os
from pathlib import Path

from .load import load_run
from .page import render_report
from .plotting import HtmlReportError, plot_style, require_matplotlib


def build_html_report(run_dir: Path, out_dir: Path) -> str:
    """The report of `run_dir` as an HTML string, its links relative to `out_dir` (where it will be
    written). Raises `HtmlReportError` without matplotlib or when `run_dir` is not a run."""
    require_matplotlib()
    report = load_run(run_dir)
    with plot_style():
        return render_report(report, str(Path(out_dir).resolve()))


def write_html_report(run_dir: Path, out: Path) -> Path:
    """Write the report of `run_dir` (a run folder, or a results folder whose `latest` names one) to
    `out`, atomically; returns `out`. Raises `HtmlReportError` (nothing is written) when matplotlib is
    missing (`pip install "pytest-deepseek[html]"`), `run_dir` is not a run, or `out` cannot be written."""
    out = Path(out)
    text = build_html_report(Path(run_dir), out.parent)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise HtmlReportError(f"cannot write the HTML report to {out}: {exc}") from None
    return out
