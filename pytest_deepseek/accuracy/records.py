"""Score records: one per dataset, whatever backend produced it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ItemResult:
    """One scored item: `score` is 1.0/0.0 for right/wrong, or the mean over repeats."""

    id: str
    score: float
    errored: bool = False


@dataclass(frozen=True)
class ScoreRecord:
    """The result of one dataset, in percent, with what is needed to trust it.

    `n` counts scored items (distinct questions, not repeats); `requested` is what the tool meant
    to score when it says so. `errored` counts items whose request failed; `incomplete` is set when
    the tool says the set did not finish (or failed as a whole, then `score` is None).
    `problems` are human-readable reasons the record cannot be trusted; `notes` are facts worth showing.
    """

    dataset: str
    metric: str
    score: float | None
    n: int | None
    backend: str
    native_name: str = ""
    errored: int = 0
    incomplete: bool = False
    requested: int | None = None
    repeats: int = 1
    items: tuple[ItemResult, ...] | None = None
    config_version: str | None = None
    config_hash: str | None = None
    backend_version: str | None = None
    source: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; per-item results kept as `[id, score, errored]` triples."""
        data = asdict(self)
        data["items"] = None if self.items is None else [[i.id, i.score, i.errored] for i in self.items]
        data["problems"] = list(self.problems)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScoreRecord":
        """Inverse of `to_dict`."""
        items = data.get("items")
        return cls(**{
            **data,
            "items": None if items is None else tuple(ItemResult(str(i), float(s), bool(e)) for i, s, e in items),
            "problems": tuple(data.get("problems") or ()),
            "notes": tuple(data.get("notes") or ()),
        })
