"""How a run's requests went wrong: failures counted by kind, the first examples of each, and the
departures from the protocol that are not failures (METRICS.md "success").

Pure: the same records give the same summary, in the run's report, its log and its summary.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import RequestRecord

EXAMPLES_PER_KIND = 3
DETAIL_CHARS = 160  # an example's detail, cut (the full text is in records.jsonl)

# Counted, never failures: a stream ended by a finish_reason without `[DONE]`, one without usage
# (its N re-counted), and requests still in flight when the run was stopped.
NO_DONE = "no_done"
NO_USAGE = "no_usage"
IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class FailureExample:
    """One failed request, enough to find it in records.jsonl and in the server's logs."""

    request_id: str
    index: int
    status: int | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"request_id": self.request_id, "index": self.index, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class FailureSummary:
    """Failed measured requests by kind (most frequent first), with the first examples of each."""

    measured: int
    by_kind: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[FailureExample]] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # NO_DONE, NO_USAGE, IN_FLIGHT when non-zero

    @property
    def failed(self) -> int:
        """Failed measured requests, all kinds."""
        return sum(self.by_kind.values())

    def to_json(self) -> dict[str, Any]:
        """The `failures` entry of a serving result's details."""
        return {"measured": self.measured, "failed": self.failed, "by_kind": dict(self.by_kind),
                "examples": {k: [e.to_json() for e in v] for k, v in self.examples.items()},
                "notes": dict(self.notes)}

    def lines(self) -> list[str]:
        """One line per failure kind (count and example request ids), then the notes."""
        return failure_lines(self.to_json())


def summarize_failures(records: Sequence[RequestRecord]) -> FailureSummary:
    """The failure summary of a run's measured (non-warmup) records, in the order they were sent."""
    measured = sorted((r for r in records if not r.warmup), key=lambda r: (r.t_send or 0, r.index))
    counts: dict[str, int] = {}
    examples: dict[str, list[FailureExample]] = {}
    notes = {NO_DONE: 0, NO_USAGE: 0, IN_FLIGHT: 0}
    for r in measured:
        if r.success:
            notes[NO_DONE] += not r.done_seen
            notes[NO_USAGE] += r.approximate
            continue
        if r.error_kind is None:
            notes[IN_FLIGHT] += 1
            continue
        counts[r.error_kind] = counts.get(r.error_kind, 0) + 1
        shown = examples.setdefault(r.error_kind, [])
        if len(shown) < EXAMPLES_PER_KIND:
            shown.append(FailureExample(r.request_id, r.index, r.status, (r.error_detail or "")[:DETAIL_CHARS]))
    order = sorted(counts, key=lambda kind: (-counts[kind], kind))
    return FailureSummary(
        measured=len(measured),
        by_kind={kind: counts[kind] for kind in order},
        examples={kind: examples[kind] for kind in order},
        notes={name: count for name, count in notes.items() if count},
    )


def failure_lines(summary: Mapping[str, Any]) -> list[str]:
    """Readable lines of a `FailureSummary.to_json()` (also as read back from summary.json)."""
    measured = summary.get("measured") or 0
    by_kind: Mapping[str, int] = summary.get("by_kind") or {}
    examples: Mapping[str, Sequence[Mapping[str, Any]]] = summary.get("examples") or {}
    lines = []
    for kind, count in by_kind.items():
        share = f" ({count / measured:.1%})" if measured else ""
        shown = examples.get(kind) or []
        ids = ", ".join(str(e.get("request_id")) for e in shown)
        first = f"; first: {shown[0].get('detail')}" if shown and shown[0].get("detail") else ""
        lines.append(f"{kind}: {count}{share}, e.g. {ids}{first}" if ids else f"{kind}: {count}{share}")
    notes: Mapping[str, int] = summary.get("notes") or {}
    if notes.get(NO_DONE):
        lines.append(f"{notes[NO_DONE]} stream(s) ended by a finish_reason without [DONE] (counted as completed)")
    if notes.get(NO_USAGE):
        lines.append(f"{notes[NO_USAGE]} stream(s) without usage: output tokens re-counted by the client")
    if notes.get(IN_FLIGHT):
        lines.append(f"{notes[IN_FLIGHT]} request(s) still in flight when the run stopped (neither completed nor "
                     "failed; their tokens inside the window count)")
    return lines
