"""The report page: run header and fingerprint, the gate sections, failures, raw material, notes.

`render_report` is pure (a `RunReport` in, one HTML document out). The document is self-contained:
styles inline, figures as inline SVG, no script, and links only to the run's own files, relative
to the folder the report is written to.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...verdict import PRECEDENCE, combine
from ..entries import CollectedResult, passed_with_warnings
from .markup import EMPTY, Html, bullet_list, join, key_values, table, tag, verdict_badge
from .model import RunReport
from .plotting import VERDICT_COLOURS
from .sections import Links, accuracy_section, serving_section, training_section

TITLE = "pytest-deepseek report"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1500px;
padding:16px 24px;color:#1f2328;background:#fff;font-size:14px;line-height:1.4}
h1{font-size:22px;margin:8px 0}h2{font-size:19px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
h3{font-size:16px;margin-top:22px}h4{font-size:14px;margin:14px 0 6px}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 7px;vertical-align:top;text-align:left}
thead th{background:#f6f8fa;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}td.num{white-space:nowrap}
table.results td:first-child{white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
table.results tbody tr:nth-child(even){background:#f6f8fa}
table.kv th{background:#f6f8fa;font-weight:600;white-space:nowrap}
ul.checks{margin:0;padding-left:0;list-style:none;min-width:300px}ul.checks li{margin:1px 0}
.badge{display:inline-block;padding:0 6px;border-radius:10px;color:#fff;font-size:11px;font-weight:600}
""" + "".join(f".v-{v}{{background:{c}}}" for v, c in VERDICT_COLOURS.items()) + """
.sim{display:inline-block;padding:0 6px;border-radius:4px;background:#fff8c5;border:1px solid #d4a72c;font-size:12px}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px;margin:8px 0}
.note{color:#57606a}.missing{color:#57606a}
figure{margin:8px 0 16px}figcaption{color:#57606a;font-size:12px}
svg{max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:8px}
.grid figure{margin:0}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:6px;border-radius:4px;font-size:12px}
details{margin:8px 0}summary{cursor:pointer;color:#0969da}
footer{margin-top:32px;color:#57606a;font-size:12px}
"""


def render_report(report: RunReport, base_dir: str) -> str:
    """The whole report as one HTML document; links are relative to `base_dir` (where it is written)."""
    links = Links(report.paths, base_dir)
    run_id = str(report.run.get("id") or Path(report.run_dir).name)
    body = join([
        _header(report, run_id),
        serving_section(report, links),
        training_section(report, links),
        accuracy_section(report, links),
        failures_section(report.entries),
        raw_section(report, links),
        notes_section(report),
        tag("footer", f"{TITLE} of {report.run_dir}, plugin {report.run.get('plugin_version') or '?'}"),
    ])
    head = join([Html('<meta charset="utf-8">'),
                 Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                 tag("title", f"{TITLE}: {run_id}"), tag("style", Html(CSS))])
    return "<!DOCTYPE html>\n" + str(tag("html", tag("head", head), tag("body", body), lang="en")) + "\n"


def overall_verdict(entries: Sequence[CollectedResult]) -> str:
    """ERROR > FAIL > INCONCLUSIVE > PASS over every result ('none' without results)."""
    return combine(e.result.verdict for e in entries) if entries else "none"


def _header(report: RunReport, run_id: str) -> Html:
    entries = report.entries
    verdict = overall_verdict(entries)
    counts = Counter((e.result.kind, e.result.verdict) for e in entries)
    kinds = list(dict.fromkeys(e.result.kind for e in entries))
    count_rows = [[kind, *(counts.get((kind, v), 0) for v in PRECEDENCE)] for kind in kinds]
    sections = [("serving", "Serving"), ("training", "Training"), ("accuracy", "Accuracy")]
    nav = [tag("a", label, href=f"#{kind}") for kind, label in sections if kind in kinds]
    nav += [tag("a", "Failures", href="#failures"), tag("a", "Raw material", href="#raw")]
    return join([
        tag("h1", f"{TITLE}: run {run_id} ", verdict_badge(verdict) if verdict != "none" else None),
        tag("div", "SIMULATED engine: these figures are not a release verdict", class_="banner")
        if report.run.get("simulated") else EMPTY,
        tag("div", "The run was interrupted: results are partial.", class_="banner")
        if report.run.get("interrupted") else EMPTY,
        tag("nav", *nav),
        tag("section", tag("h2", "Run"), key_values((k, _value(v)) for k, v in report.run.items()
                                                   if k != "fingerprint"),
            tag("h3", "Fingerprint"), key_values((k, _value(v)) for k, v in fingerprint(report).items()),
            tag("h3", "Verdicts"), table(("gate", *(v.upper() for v in PRECEDENCE)), count_rows,
                                         numeric=(1, 2, 3, 4)),
            id="run"),
    ])


def fingerprint(report: RunReport) -> dict[str, Any]:
    """The run's fingerprint: the header's own when it has one, else what every result's shares."""
    own = report.run.get("fingerprint")
    if isinstance(own, Mapping):
        return dict(own)
    prints = [e.result.fingerprint for e in report.entries]
    if not prints:
        return {}
    first = prints[0]
    return {k: v for k, v in first.items() if all(k in p and p[k] == v for p in prints[1:])}


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if all(not isinstance(v, (dict, list)) for v in value) \
            else json.dumps(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else "-"
    return "-" if value is None else str(value)


def failures_section(entries: Sequence[CollectedResult]) -> Html:
    """Every result that did not pass (expected vs measured, problems, warnings), the warnings of
    those that passed, and the failed requests of every serving result by error kind with example
    request ids."""
    blocks: list[object] = [tag("h2", "Failures")]
    failing = [e for e in entries if e.result.verdict != "pass"]
    if not failing:
        blocks.append(tag("p", "Every result passed.", class_="note"))
    for entry in failing:
        result = entry.result
        items = [join([verdict_badge(c.verdict), f" {c.name}: {c.message}"]) for c in result.checks
                 if c.verdict != "pass"]
        items += [join([verdict_badge("error"), " ", p]) for p in result.problems]
        items += [f"warning: {w}" for w in result.warnings]
        blocks += [_result_heading(entry), bullet_list(items), _contract_table(result.details.get("contract") or [])]
    warned = passed_with_warnings(entries)
    if warned:
        blocks.append(tag("h3", "Passed, with warnings"))
    for entry in warned:
        blocks += [_result_heading(entry), bullet_list([f"warning: {w}" for w in entry.result.warnings])]
    request_rows = [row for e in entries if e.result.kind == "serving" for row in _failure_rows(e)]
    if request_rows:
        blocks += [tag("h3", "Failed requests by kind"),
                   table(("scenario", "kind", "count", "share", "example request ids", "status", "first detail"),
                         request_rows, numeric=(2, 3), class_="results")]
    return tag("section", *blocks, id="failures")


def _result_heading(entry: CollectedResult) -> Html:
    result = entry.result
    return tag("h4", verdict_badge(result.verdict), f" {result.kind} {result.profile} {result.case_id}",
               tag("div", entry.nodeid, class_="note"))


def _failure_rows(entry: CollectedResult) -> list[list[object]]:
    failures = entry.result.details.get("failures") or {}
    measured = failures.get("measured") or 0
    examples = failures.get("examples") or {}
    rows: list[list[object]] = []
    for kind, count in (failures.get("by_kind") or {}).items():
        shown = examples.get(kind) or []
        rows.append([entry.result.case_id, kind, count, f"{count / measured:.1%}" if measured else "-",
                     ", ".join(str(e.get("request_id")) for e in shown),
                     ", ".join(str(e.get("status")) for e in shown if e.get("status") is not None) or "-",
                     tag("code", shown[0].get("detail")) if shown and shown[0].get("detail") else "-"])
    return rows


def _contract_table(contract: Sequence[Mapping[str, Any]]) -> Html:
    if not contract:
        return EMPTY
    rows = [[str(c.get("code")), c.get("count"), str(c.get("message")),
             ", ".join(str(x) for x in c.get("examples") or ())] for c in contract]
    return table(("contract", "count", "message", "examples"), rows, numeric=(1,))


def raw_section(report: RunReport, links: Links) -> Html:
    """Links to the run's files, each scenario's log, the training logs and the evaluation results."""
    run_files = [links.to(Path(path).name, path) for path in report.files]
    named: dict[str, list[str]] = {}
    for entry in report.entries:
        result = entry.result
        for label, value in result.locations.items():
            for path in (str(value).split(", ") if value else ()):
                named.setdefault(path, []).append(f"{result.kind} {result.case_id} ({label})")
    rows = [[links.to(path, path), "; ".join(dict.fromkeys(users))] for path, users in named.items()
            if path not in report.files]
    return tag("section", tag("h2", "Raw material"), tag("p", join(run_files, " · ")),
               table(("file or folder", "named by"), rows) if rows else EMPTY, id="raw")


def notes_section(report: RunReport) -> Html:
    """Tests the run started but never finished, and what the report could not read."""
    items = [f"unfinished: {i.get('kind')} {i.get('profile')} {i.get('scenario_id')} ({i.get('nodeid')})"
             + (f", {i.get('recorded')} of {i.get('planned')} requests on disk" if i.get("planned") else "")
             for i in report.incomplete]
    items += list(report.notes)
    if not items:
        return EMPTY
    return tag("section", tag("h2", "Notes"), bullet_list(items), id="notes")
