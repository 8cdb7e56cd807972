"""What differs between the conditions two runs were measured under (pure).

Each result carries a fingerprint: the session's part (plugin and Python versions, endpoint and its
model, the profile's model, engine, hardware and topology, the thresholds file's hash, the
tokenizer) and its gate's part (serving: API, dataset, prompt-set hash and seed; accuracy: backend,
evaluated endpoint, dataset version; training: logs, dialect). Every field that differs between a
test and its counterpart is reported, and the run headers' fields beside them: a comparison always
says what changed, even when the change is the point of it (another engine version, another
hardware).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Shown first, in this order (deployment, workload, tools); any other field follows by name.
FIELD_ORDER = ("model", "endpoint_model", "engine", "engine_version", "hardware", "nodes", "devices_per_node",
               "endpoint_url", "simulated", "api", "dataset", "prompt_set_hash", "prompt_seed", "tokenizer",
               "thresholds_sha256", "backend", "dataset_version", "evaluated_endpoint", "dialect", "logs",
               "profile", "plugin_version", "python")
# The run header's fields that describe conditions (not the run's id, times or folders).
HEADER_FIELDS = ("model", "endpoint_url", "simulated", "tls_verify", "tokenizer", "plugin_version", "overrides")
MISSING = "-"


def field_text(value: Any) -> str:
    """A fingerprint value as shown: text as is, others as compact JSON, `-` when absent."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def differing_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Field -> (A's value, B's value) for every field whose values differ (absent on one side included)."""
    out = {}
    for name in {*a, *b}:
        left, right = field_text(a.get(name)), field_text(b.get(name))
        if left != right:
            out[name] = (left, right)
    return out


@dataclass(frozen=True)
class FieldDifference:
    """One field that differs: its values in A and in B, and where (the run header, or how many of
    the matched tests)."""

    field: str
    a: tuple[str, ...]
    b: tuple[str, ...]
    where: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"field": self.field, "a": list(self.a), "b": list(self.b), "where": self.where}


def header_fields(header: Mapping[str, Any]) -> dict[str, Any]:
    """The run header's condition fields, and the fields of a `fingerprint` mapping it may carry."""
    fields = {k: header.get(k) for k in HEADER_FIELDS}
    extra = header.get("fingerprint")
    return {**fields, **extra} if isinstance(extra, Mapping) else fields


def _order(name: str) -> tuple[int, str]:
    return (FIELD_ORDER.index(name) if name in FIELD_ORDER else len(FIELD_ORDER), name)


def run_differences(header_a: Mapping[str, Any], header_b: Mapping[str, Any],
                    pairs: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[FieldDifference]:
    """The fields that differ between matched tests' fingerprints (values gathered over the tests),
    then the run headers' fields that differ (unless the tests already show the same difference)."""
    pairs = list(pairs)
    seen: dict[str, tuple[dict[str, None], dict[str, None], int]] = {}
    for fa, fb in pairs:
        for name, (left, right) in differing_fields(fa, fb).items():
            values_a, values_b, count = seen.get(name, ({}, {}, 0))
            values_a[left] = None
            values_b[right] = None
            seen[name] = (values_a, values_b, count + 1)
    out = [FieldDifference(name, tuple(va), tuple(vb), f"{count} of {len(pairs)} test(s)")
           for name, (va, vb, count) in sorted(seen.items(), key=lambda item: _order(item[0]))]
    header = differing_fields(header_fields(header_a), header_fields(header_b))
    shown = {(d.field, d.a, d.b) for d in out}
    out += [FieldDifference(name, (left,), (right,), "run header")
            for name, (left, right) in sorted(header.items(), key=lambda item: _order(item[0]))
            if (name, (left,), (right,)) not in shown]
    return out
