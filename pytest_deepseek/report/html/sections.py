"""The gate sections of the report: serving (a table and figures per profile), training (per
entry) and accuracy (per profile). Pure: results and series in, HTML out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ...verdict import Check, GateResult
from ..entries import CollectedResult
from . import figures_accuracy, figures_serving, figures_training
from .labels import ENDPOINT_HEADERS, endpoint_rows, grid_order, load_label, num, relative_href, sig
from .markup import EMPTY, Html, bullet_list, figure, join, link, table, tag, verdict_badge
from .model import BoxStats, RunReport, ScenarioSeries, TrainingSeries


@dataclass(frozen=True)
class Links:
    """Links to the raw material, relative to the folder the report is written to."""

    paths: Mapping[str, str | None]  # path as the results name it -> where it is now
    base_dir: str

    def href(self, path: str | None) -> str | None:
        """The link to `path`, None when it is gone."""
        if not path:
            return None
        here = self.paths.get(path, None)
        return None if here is None else relative_href(here, self.base_dir)

    def to(self, label: object, path: str | None) -> Html:
        """A link labelled `label` to `path` (or the label marked missing)."""
        return link(label, self.href(path))


def drawn(make: Callable[[], str | None], caption: object = None) -> Html:
    """A figure, or a note when drawing it failed (a report is never lost to one odd series)."""
    try:
        svg = make()
    except Exception as exc:  # noqa: BLE001 - said in the page instead
        return figure(None, problem=f"figure could not be drawn: {type(exc).__name__}: {exc}")
    return figure(svg, caption)


def by_profile(entries: Sequence[CollectedResult], kind: str) -> dict[str, list[CollectedResult]]:
    """The entries of one gate, grouped by profile in the order they appear."""
    groups: dict[str, list[CollectedResult]] = {}
    for entry in entries:
        if entry.result.kind == kind:
            groups.setdefault(entry.result.profile, []).append(entry)
    return groups


def check_lines(result: GateResult) -> Html:
    """Expected vs measured: each check's verdict and message, then the problems that make an ERROR."""
    items = [join([verdict_badge(c.verdict), " ", c.message]) for c in result.checks]
    items += [join([verdict_badge("error"), " ", problem]) for problem in result.problems]
    return bullet_list(items, class_="checks")


# -- serving ------------------------------------------------------------------------------------

SERVING_HEADERS = ("scenario", "in", "out", "load", "done", "failed", "out tok/s/node", "in tok/s/node",
                   "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms", "verdict", "expected vs measured",
                   "raw")
_SERVING_NUMERIC = tuple(range(1, 12))


def _stat(result: GateResult, name: str, key: str) -> str:
    return num((result.metrics.get(name) or {}).get(key))


def serving_row(entry: CollectedResult, links: Links) -> list[object]:
    """A serving scenario's table row."""
    result = entry.result
    scenario = result.details.get("scenario") or {}
    metrics = result.metrics
    return [
        tag("span", result.case_id, title=entry.nodeid), num(scenario.get("input_len")),
        num(scenario.get("output_len")), load_label(scenario), num(metrics.get("completed")),
        num(metrics.get("failed")), num(metrics.get("output_throughput_per_node")),
        num(metrics.get("input_throughput_per_node")), _stat(result, "ttft_ms", "p50"),
        _stat(result, "ttft_ms", "p99"), _stat(result, "tpot_ms", "p50"), _stat(result, "tpot_ms", "p99"),
        verdict_badge(result.verdict), check_lines(result), links.to("log", result.locations.get("log")),
    ]


def serving_section(report: RunReport, links: Links) -> Html:
    """One block per profile: the table, throughput by output length, latencies, rate over time."""
    groups = by_profile(report.entries, "serving")
    if not groups:
        return EMPTY
    blocks = [tag("h2", "Serving")]
    for profile, entries in groups.items():
        rows = sorted(entries, key=lambda e: grid_order(e.result.details.get("scenario") or {}))
        results = [e.result for e in rows]
        series = [report.scenarios.get((e.nodeid, e.result.case_id)) for e in rows]
        simulated = any(r.simulated for r in results)
        blocks += [
            tag("h3", profile, " ", tag("span", "SIMULATED engine", class_="sim") if simulated else None,
                id=f"serving-{profile}"),
            table(SERVING_HEADERS, [serving_row(e, links) for e in rows], numeric=_SERVING_NUMERIC,
                  class_="results"),
            _by_endpoint(results),
            drawn(lambda: figures_serving.throughput_by_output_length(profile, results),
                  "Output tok/s per node by output length; bars: the floor's confidence bounds"),
            drawn(lambda: figures_serving.latency_distributions(
                profile, [(r, *_latencies(s)) for r, s in zip(results, series)]),
                "TTFT and TPOT of the completed requests, per scenario"),
            _rate_figures(results, series),
        ]
    return tag("section", *blocks, id="serving")


def _by_endpoint(results: Sequence[GateResult]) -> Html:
    """The scenarios measured on several URLs: a row per replica (and one for the URLs only woken up)."""
    rows = [[tag("span", r.case_id), *row] for r in results if len(r.details.get("endpoints") or ()) > 1
            for row in endpoint_rows(r.details["endpoints"])]
    if not rows:
        return EMPTY
    return join([tag("h4", "By endpoint"),
                 table(("scenario", *ENDPOINT_HEADERS), rows, numeric=range(2, 2 + len(ENDPOINT_HEADERS) - 1),
                       class_="results")])


def _latencies(series: ScenarioSeries | None) -> tuple[BoxStats | None, BoxStats | None]:
    return (series.ttft_ms, series.tpot_ms) if series is not None else (None, None)


def _rate_figures(results: Sequence[GateResult], series: Sequence[ScenarioSeries | None]) -> Html:
    rates = [(r, s.rate) for r, s in zip(results, series) if s is not None and s.rate is not None]
    figures = [drawn(lambda r=r, rate=rate: figures_serving.rate_over_time(r, rate)) for r, rate in rates]
    if not figures:
        return EMPTY
    return join([tag("h4", "Output tokens/s over time (shaded: the steady-state window the gate judged)"),
                 tag("div", *figures, class_="grid")])


# -- training -----------------------------------------------------------------------------------

TRAINING_HEADERS = ("test", "check", "statistic", "threshold", "measured", "iterations", "verdict", "message")


def _iterations(check: Check) -> str:
    span = check.details.get("iterations")
    return f"{span[0]:,}-{span[1]:,}" if isinstance(span, (list, tuple)) and len(span) == 2 else "-"


def training_rows(entries: Sequence[CollectedResult]) -> list[list[object]]:
    """One row per check of an entry's tests."""
    return [[str(e.result.details.get("aspect") or e.result.case_id), c.name, str(c.details.get("statistic") or "-"),
             f"{c.op} {sig(c.threshold)}" if c.threshold is not None else "-", sig(c.value), _iterations(c),
             verdict_badge(c.verdict), c.message]
            for e in entries for c in e.result.checks]


def training_section(report: RunReport, links: Links) -> Html:
    """One block per training entry: its checks, the loss curve, the speed curves, the deciding lines."""
    groups: dict[tuple[str, str], list[CollectedResult]] = {}
    for entry in report.entries:
        if entry.result.kind == "training":
            name = str(entry.result.details.get("entry") or entry.result.case_id.split(":")[0])
            groups.setdefault((entry.result.profile, name), []).append(entry)
    if not groups:
        return EMPTY
    blocks = [tag("h2", "Training")]
    for (profile, name), entries in groups.items():
        series = report.training.get((profile, name))
        example = any(e.result.details.get("example") for e in entries)
        paths = list(dict.fromkeys(p for e in entries for p in (e.result.details.get("paths") or ())))
        blocks += [
            tag("h3", f"{profile} / {name}", " ", tag("span", "example log", class_="sim") if example else None,
                id=f"training-{profile}-{name}"),
            table(TRAINING_HEADERS, training_rows(entries), class_="results"),
            tag("p", "log: ", join([links.to(p, p) for p in paths], ", ")) if paths else EMPTY,
            _training_figures(f"{profile} / {name}", entries, series),
            _deciding_records(entries),
        ]
    return tag("section", *blocks, id="training")


def _training_figures(title: str, entries: Sequence[CollectedResult], series: TrainingSeries | None) -> Html:
    if series is None or series.problem:
        reason = series.problem if series is not None else "the log was not read"
        return tag("p", f"no training plots: {reason}", class_="note")
    out = []
    for entry in entries:
        result = entry.result
        for check in result.checks:
            if check.name == "converge":
                crossing = result.metrics.get("converge.first_crossing_iteration")
                out.append(drawn(lambda c=check, x=crossing: figures_training.loss_curve(title, series, c, x),
                                 "Loss: raw values, the converge statistic, the threshold, `within` and the crossing"))
            elif check.name.startswith(("floor.", "ceiling.")):
                out.append(drawn(lambda c=check: figures_training.speed_curve(f"{title}: {c.name}", series, c),
                                 f"{check.metric} over iterations and the {check.details.get('statistic')} judged"))
    return join(out)


def _deciding_records(entries: Sequence[CollectedResult]) -> Html:
    quotes = [(e.result.case_id, c.name, str(c.details["record"])) for e in entries for c in e.result.checks
              if c.details.get("record")]
    if not quotes:
        return EMPTY
    return tag("details", tag("summary", "deciding log lines"),
               *(tag("div", tag("b", f"{case} {name}"), tag("pre", record)) for case, name, record in quotes))


# -- accuracy -----------------------------------------------------------------------------------

ACCURACY_HEADERS = ("dataset", "backend", "metric", "score %", "n", "interval", "min / reference", "verdict",
                    "message", "results")


def _rule_text(result: GateResult) -> str:
    metrics = result.metrics
    if metrics.get("reference") is not None:
        tolerance = metrics.get("tolerance")
        return f"reference {num(metrics['reference'])}" + (f" ± {num(tolerance)}" if tolerance is not None else "")
    floors = [c for c in result.checks if c.op == ">=" and c.threshold is not None]
    return f"min {num(floors[0].threshold)}" if floors else "-"


def accuracy_row(entry: CollectedResult, links: Links) -> list[object]:
    """A dataset's table row."""
    result = entry.result
    metrics = result.metrics
    interval = metrics.get("interval")
    shown = (f"{num(interval[0])} - {num(interval[1])}"
             if isinstance(interval, (list, tuple)) and len(interval) == 2 else "-")
    return [str(result.details.get("dataset") or result.case_id), str(result.details.get("backend") or "-"),
            str(metrics.get("metric") or "-"), num(metrics.get("score")), num(metrics.get("n")), shown,
            _rule_text(result), verdict_badge(result.verdict), check_lines(result),
            links.to("results", result.locations.get("results_dir"))]


def accuracy_section(report: RunReport, links: Links) -> Html:
    """One block per profile: the datasets' table and their scores against the rules."""
    groups = by_profile(report.entries, "accuracy")
    if not groups:
        return EMPTY
    blocks = [tag("h2", "Accuracy")]
    for profile, entries in groups.items():
        results = [e.result for e in entries]
        simulated = any(r.simulated for r in results)
        blocks += [
            tag("h3", profile, " ", tag("span", "SIMULATED engine", class_="sim") if simulated else None,
                id=f"accuracy-{profile}"),
            table(ACCURACY_HEADERS, [accuracy_row(e, links) for e in entries], numeric=(3, 4), class_="results"),
            drawn(lambda: figures_accuracy.scores(profile, results),
                  "Scores with their confidence intervals; red ticks: the minimum or the reference less the tolerance"),
        ]
    return tag("section", *blocks, id="accuracy")
