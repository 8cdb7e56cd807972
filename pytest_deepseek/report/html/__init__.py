"""A run folder as one self-contained HTML page: tables, inline SVG figures, links to the raw material.

`write_html_report(run_dir, out)` is the entry point; it needs matplotlib (the `html` extra) and
raises `HtmlReportError` naming the install command without it. Nothing here is imported by the
plugin at start-up: the names below load on first use.
"""

from ...lazy import lazy_exports

__all__ = ["HtmlReportError", "build_html_report", "require_matplotlib", "write_html_report"]
__getattr__ = lazy_exports(__name__, {"HtmlReportError": "plotting", "require_matplotlib": "plotting",
                                      "build_html_report": "writer", "write_html_report": "writer"})
