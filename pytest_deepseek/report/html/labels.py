"""How the report writes numbers, loads and paths (shared by its tables and its figures)."""

from __future__ import annotations

import math
import os
from urllib.parse import quote
from collections.abc import Mapping, Sequence
from typing import Any

from ...serving.spec import REPLICA

_MODES = ("closed", "open", "batch")


def num(value: Any, digits: int = 2) -> str:
    """A number with thousands separators and `digits` decimals; '-' for none."""
    if value is None or isinstance(value, bool):
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:,.{digits}f}"
    return str(value)


def sig(value: Any, digits: int = 6) -> str:
    """A number in `digits` significant digits; '-' for none."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}g}"
    return "-" if value is None else str(value)


def load_label(scenario: Mapping[str, Any]) -> str:
    """The load of a serving scenario: `c=64` (closed loop), `r=8` (open loop), `b=8x10` (batch)."""
    mode = scenario.get("mode")
    if mode == "open":
        return f"r={scenario.get('request_rate')}"
    if mode == "batch":
        return f"b={scenario.get('batch_size')}x{scenario.get('num_iters')}"
    return f"c={scenario.get('concurrency')}" if scenario.get("concurrency") is not None else "-"


def load_order(scenario: Mapping[str, Any]) -> tuple[float, float]:
    """Sort key of a load: closed, open, batch; then by size (an infinite rate last)."""
    mode = str(scenario.get("mode") or "closed")
    size = {"closed": scenario.get("concurrency"), "open": scenario.get("request_rate"),
            "batch": scenario.get("batch_size")}.get(mode)
    try:
        value = float(size) if size is not None else 0.0
    except (TypeError, ValueError):
        value = math.inf
    return (float(_MODES.index(mode)) if mode in _MODES else float(len(_MODES)), value)


def _length(scenario: Mapping[str, Any], key: str) -> float:
    value = scenario.get(key)
    return float(value) if isinstance(value, (int, float)) else math.inf


def grid_order(scenario: Mapping[str, Any]) -> tuple[float, ...]:
    """Sort key of a scenario in its profile's table: input length, output length, load."""
    return (_length(scenario, "input_len"), _length(scenario, "output_len"), *load_order(scenario))


def series_order(scenario: Mapping[str, Any]) -> tuple[float, ...]:
    """Sort key of a line of scenarios across output lengths: input length, load."""
    return (_length(scenario, "input_len"), *load_order(scenario))


def relative_href(path: str, base_dir: str) -> str:
    """`path` relative to the folder the report is written to, as a link (forward slashes, quoted)."""
    try:
        rel = os.path.relpath(path, base_dir)
    except ValueError:  # another drive (Windows): keep it absolute
        rel = path
    return quote(rel.replace(os.sep, "/"))


# The per-URL breakdown of a deployment of several URLs (terminal and HTML tables).
ENDPOINT_HEADERS = ("endpoint", "requests", "failed", "out tok/s (run window)", "TTFT p50 ms", "TTFT p99 ms",
                    "warm-up")


def endpoint_rows(endpoints: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """A scenario's rows by endpoint (`ENDPOINT_HEADERS`) from its summary's `endpoints` list: one
    per replica, then one for the URLs only woken up, if any."""
    rows: list[tuple[str, ...]] = []
    for item in endpoints:
        if item.get("role") == REPLICA:
            ttft = item.get("ttft_ms") or {}
            rows.append((str(item.get("endpoint")), num(item.get("requests")), num(item.get("failed")),
                         num(item.get("output_throughput_run_window")), num(ttft.get("p50"), 1),
                         num(ttft.get("p99"), 1), num(item.get("warmup"))))
    woken = [item for item in endpoints if item.get("role") != REPLICA]
    if woken:
        rows.append((f"{len(woken)} warm-up only", "-", "-", "-", "-", "-",
                     num(sum(int(item.get("warmup") or 0) for item in woken))))
    return rows
