"""The serving metric names (no numpy: the thresholds validator imports this at plugin start)."""

from __future__ import annotations

LATENCY_METRICS = ("ttft_ms", "ttfo_ms", "tpot_ms", "e2e_ms", "chunk_gap_ms")
LATENCY_STATS = ("mean", "p50", "p90", "p95", "p99")
# Throughputs that get `_per_node` and `_per_device` variants.
THROUGHPUT_BASES = (
    "output_throughput",
    "output_throughput_run_window",
    "input_throughput",
    "total_token_throughput",
    "request_throughput",
    "goodput",
)
# The suffixes of a throughput divided by the nodes, and by all devices.
PER_NODE, PER_DEVICE = "_per_node", "_per_device"


def throughput_names() -> list[str]:
    """Every throughput metric name, with its per-node and per-device variants."""
    return [f"{b}{s}" for b in THROUGHPUT_BASES for s in ("", PER_NODE, PER_DEVICE)]


def base_metric(name: str) -> str:
    """The whole-deployment metric a per-node or per-device variant scales (`goodput_per_node` ->
    `goodput`); any other name is its own base."""
    return name.removesuffix(PER_NODE).removesuffix(PER_DEVICE)


def latency_names() -> list[str]:
    """`ttft_ms.p99` and friends."""
    return [f"{m}.{s}" for m in LATENCY_METRICS for s in LATENCY_STATS]


def gateable_metrics() -> list[str]:
    """Every metric name a floor or ceiling may name."""
    return throughput_names() + ["good_fraction", "error_rate"] + latency_names()
