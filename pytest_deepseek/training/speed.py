"""Speed and memory: derived per-device figures, floors and ceilings over steady state, cross-checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..verdict import Check
from .normalise import half_unit, printed_token
from .records import Record
from .result import training_check
from .spec import CROSS_CHECK_PREFIX, Bound, EntrySpec
from ..stats.summary import quantile
from .stats import summarise


DERIVED = ("tokens_per_sec_per_device", "tokens_per_sec_aggregate")


@dataclass(frozen=True)
class Topology:
    """seq_length, global batch and device count: from the entry, else the log's start-up lines."""

    seq_length: int | None
    global_batch_size: int | None
    devices: int | None
    source: str

    @classmethod
    def resolve(cls, spec: EntrySpec, info: Mapping[str, float]) -> "Topology":
        """Entry values win; the log's ``device_num``/``seq_length``/``global_batch_size`` fill gaps."""
        def pick(value: int | None, key: str) -> tuple[int | None, bool]:
            if value is not None:
                return value, False
            v = info.get(key)
            return (int(v), True) if v else (None, False)
        seq, s1 = pick(spec.seq_length, "seq_length")
        gbs, s2 = pick(spec.global_batch_size, "global_batch_size")
        dev, s3 = pick(spec.devices, "device_num")
        if gbs is None and spec.batch_size and dev:
            # XTuner: global batch = batch per device x devices / sequence-parallel size
            gbs = spec.batch_size * dev // max(1, spec.sequence_parallel_size)
        return cls(seq, gbs, dev, "log start-up lines" if (s1 or s2 or s3) else "entry")


def derive(records: Sequence[Record], topo: Topology) -> str | None:
    """Add ``tokens_per_sec_per_device`` (and ``_aggregate``) where derivable; return how."""
    how = None
    for r in records:
        m = r.metrics
        if "tokens_per_sec_per_device" in m:
            continue
        v = None
        sps = m.get("samples_per_sec_per_device")
        step = m.get("step_time_s")
        if sps is not None and topo.seq_length:
            v, how = sps * topo.seq_length, "samples/s/p x seq_length"
        elif step and topo.global_batch_size and topo.seq_length and topo.devices:
            v = topo.global_batch_size * topo.seq_length / step / topo.devices
            how = "global_batch_size x seq_length / step time / devices"
        elif "tokens_per_sec_global" in m and topo.devices:
            v, how = m["tokens_per_sec_global"] / topo.devices, "global tokens/s / devices"
        elif "tokens_per_sec" in m:
            v, how = m["tokens_per_sec"], "tokens_per_sec as printed (per device)"
        if v is not None:
            m["tokens_per_sec_per_device"] = v
            if topo.devices:
                m["tokens_per_sec_aggregate"] = v * topo.devices
    return how


def steady(records: Sequence[Record], warmup_iters: int) -> list[Record]:
    """Records after the first ``warmup_iters`` iterations."""
    return [r for r in records if r.iteration > warmup_iters]


def _default_statistic(metric: str, spec: EntrySpec) -> str:
    return "max" if "mem" in metric else spec.speed_statistic


def bound_rows(records: Sequence[Record], bound: Bound, spec: EntrySpec) -> tuple[list[Record], int]:
    """The records a floor or ceiling is decided on (steady ones, all for memory, with a finite value),
    outliers left out except for an aggregate; and how many outliers were left out."""
    stat = bound.statistic or _default_statistic(bound.metric, spec)
    memory = "mem" in bound.metric
    pool = list(records) if memory else steady(records, spec.warmup_iters)
    rows = [r for r in pool if bound.metric in r.metrics and r.metrics[bound.metric] == r.metrics[bound.metric]]
    if stat == "aggregate" or memory or len(rows) < 3:
        return rows, 0
    med = quantile(sorted(r.metrics[bound.metric] for r in rows), 0.5)
    f = spec.outlier_factor
    kept = [r for r in rows if med / f <= r.metrics[bound.metric] <= med * f] if med > 0 else rows
    return kept, len(rows) - len(kept)


def check_bound(records: Sequence[Record], bound: Bound, spec: EntrySpec, ended: bool,
                where: str = "") -> tuple[Check, dict[str, Any]]:
    """A floor (>=) or ceiling (<=) on a named statistic over steady, outlier-free records."""
    stat = bound.statistic or _default_statistic(bound.metric, spec)
    op = ">=" if bound.kind == "floor" else "<="
    memory = "mem" in bound.metric
    base: dict[str, Any] = dict(name=bound.check_name, metric=bound.metric, op=op, threshold=bound.threshold,
                                statistic=stat)
    if not any(bound.metric in r.metrics for r in records):
        seen = sorted({k for r in records[:50] for k in r.metrics})
        return training_check(**base, verdict="error",
                              message=f"metric {bound.metric!r} not found in {where or 'the log'} (metrics: "
                                      f"{', '.join(seen)}); derived speeds need seq_length/global_batch_size/devices",
                              final=True), {}
    rows, excluded = bound_rows(records, bound, spec)
    if len(rows) < (1 if memory else spec.min_records):
        return training_check(**base, verdict="inconclusive",
                              iterations=(rows[0].iteration, rows[-1].iteration) if rows else None,
                              message=f"only {len(rows)} steady records of {bound.metric} after warmup "
                                      f"{spec.warmup_iters} (need {spec.min_records})", final=ended), {}
    values = [r.metrics[bound.metric] for r in rows]
    if stat == "aggregate":
        weights = [r.metrics.get("step_time_s") for r in rows]
        if any(w is None for w in weights):
            value = summarise(values, "mean")
            stat = "mean (no step time for aggregate)"
        elif "time" in bound.metric:
            value = sum(values) / len(values)  # total time / iterations
        else:
            value = summarise(values, "aggregate", [float(w) for w in weights])  # type: ignore[arg-type]
    else:
        value = summarise(values, stat)
    ok = value >= bound.threshold if op == ">=" else value <= bound.threshold
    nearest = min(rows, key=lambda r: abs(r.metrics[bound.metric] - value))
    span = (rows[0].iteration, rows[-1].iteration)
    excl = f", {excluded} outliers excluded (outside median /{spec.outlier_factor:g} .. x{spec.outlier_factor:g})" \
        if excluded else ""
    scope = "all records" if memory else f"iterations {span[0]}-{span[1]} after warmup {spec.warmup_iters}"
    msg = (f"expected {stat} {bound.metric} {op} {bound.threshold:g}; measured {value:.6g} over "
           f"{len(rows)} records, {scope}{excl}")
    metrics = {f"{bound.metric}.{stat}": value, f"{bound.metric}.n": len(rows),
               f"{bound.metric}.outliers_excluded": excluded}
    if not memory:
        s = sorted(values)
        metrics.update({f"{bound.metric}.median": quantile(s, 0.5), f"{bound.metric}.p10": quantile(s, 0.1),
                        f"{bound.metric}.mean": sum(s) / len(s)})
    return training_check(**base, value=value, verdict="pass" if ok else "fail", iterations=span,
                          record=nearest.quote(), message=msg,
                          final=ended or (memory and not ok)
                          or (spec.speed_decide_after is not None and len(rows) >= spec.speed_decide_after)), metrics


def _printed_rel(r: Record, metric: str, value: float) -> float:
    tok = printed_token(r.line, metric)
    return half_unit(tok) / abs(value) if tok and value else 0.0


def cross_checks(records: Sequence[Record], topo: Topology, spec: EntrySpec, dialect: str,
                 ended: bool) -> list[Check]:
    """Consistency checks that catch mis-parsing or wrong topology numbers."""
    out: list[Check] = []
    rows = steady(records, spec.warmup_iters)
    # mis-parsing is systematic: an even sample of at most ~2000 records shows it
    rows = rows[::max(1, len(rows) // 2000)]
    tol = spec.cross_check_tolerance
    if dialect == "mmengine":
        pairs = [r for r in rows if "tokens_per_sec" in r.metrics and r.metrics.get("time")]
        if len(pairs) >= 3:
            prods = [r.metrics["tokens_per_sec"] * r.metrics["time"] for r in pairs]
            med = quantile(sorted(prods), 0.5)
            bad = [r for r, p in zip(pairs, prods)
                   if abs(p / med - 1) > tol and abs(p / med - 1) > tol + _printed_rel(r, "time", r.metrics["time"])]
            out.append(_cross("tokens_per_iteration", "tokens_per_sec x time", pairs, bad, med, tol,
                              "tokens per iteration (tokens_per_sec x time) is constant", ended))
    if dialect == "mindformers" and topo.global_batch_size and topo.devices:
        pairs = [r for r in rows if "samples_per_sec_per_device" in r.metrics and r.metrics.get("step_time_s")]
        if len(pairs) >= 1:
            ratios = [r.metrics["samples_per_sec_per_device"] * r.metrics["step_time_s"] * topo.devices
                      / topo.global_batch_size for r in pairs]
            bad = [r for r, q in zip(pairs, ratios)
                   if abs(q - 1) > tol + 0.5 / max(r.metrics.get("per_step_time_ms", 1e9), 1e-9)
                   + 0.000005 / max(r.metrics["samples_per_sec_per_device"], 1e-12)]
            out.append(_cross("samples_per_device", "samples/s/p vs GBS / devices / step time", pairs, bad, 1.0,
                              tol, f"samples/s/p = {topo.global_batch_size} / {topo.devices} / step_s", ended))
    return out


def _cross(name: str, relation: str, rows: Sequence[Record], bad: Sequence[Record], ref: float, tol: float,
           what: str, ended: bool) -> Check:
    """`cross_check.<name>`: at most 10% of the records may break `relation` by more than `tol`."""
    frac = len(bad) / len(rows)
    ok = frac <= 0.1
    first = bad[0] if bad else rows[-1]
    return training_check(
        CROSS_CHECK_PREFIX + name, "pass" if ok else "error",
        f"{what}: {len(bad)}/{len(rows)} records deviate by more than {tol:.0%} (reference {ref:.6g})"
        + ("" if ok else " — mis-parsed log, or wrong seq_length/global_batch_size/devices?"),
        metric=relation, op="<=", threshold=tol, value=frac, statistic="fraction of records",
        iterations=(rows[0].iteration, rows[-1].iteration), record=first.quote(), final=ended or not ok)
