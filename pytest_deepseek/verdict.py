"""The one result shape of the three gates: `Check`, `GateResult`, and the one verdict rule `combine`.

Every gate (serving, training, accuracy) turns its measurement into a `GateResult`; the report,
the JUnit properties, summary.json and the failure text read only this type.

Verdict precedence, the same everywhere: ERROR > FAIL > INCONCLUSIVE > PASS. An ERROR means the
figures cannot be trusted (the workload contract was broken, the log or results could not be read,
the evaluation did not run), so it outranks any verdict drawn from those figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .fingerprint import JUNIT_FIELDS as JUNIT_FINGERPRINT

Verdict = Literal["pass", "fail", "inconclusive", "error"]
GateKind = Literal["serving", "training", "accuracy"]
PRECEDENCE: tuple[Verdict, ...] = ("error", "fail", "inconclusive", "pass")
JUNIT_PREFIX = "deepseek."
# Labels of the raw material a result points to (records.jsonl, a log, an evaluation's results folder).
LOCATION_KEYS = ("records", "log", "results_dir")
_CHECK_KEYS = ("name", "metric", "op", "threshold", "value", "low", "high", "verdict", "message")
_COMMON_KEYS = ("kind", "profile", "scenario_id", "simulated", "verdict", "metrics", "figures", "checks", "errors",
                "warnings", "fingerprint")


def combine(verdicts: Iterable[str], *, allow_inconclusive: bool = False) -> Verdict:
    """The overall verdict of several: the first of PRECEDENCE present (PASS when there are none).

    With `allow_inconclusive`, an undecided check counts as a pass (the user asked for it).
    """
    present = set(verdicts)
    unknown = present - set(PRECEDENCE)
    if unknown:
        raise ValueError(f"unknown verdict(s): {sorted(unknown)}")
    if allow_inconclusive:
        present.discard("inconclusive")
    return next((v for v in PRECEDENCE if v in present), "pass")


@dataclass(frozen=True)
class Check:
    """One decision against one threshold: what was expected, what was measured, and how.

    `name` is stable and unique within its result (JUnit properties and dashboards key on it);
    `details` holds what only one gate has (statistic, iterations, deciding record, method, ...).
    """

    name: str
    verdict: Verdict
    message: str
    metric: str = ""
    op: str = ""
    threshold: float | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = set(self.details) & set(_CHECK_KEYS)
        if clash:
            raise ValueError(f"check details may not redefine {sorted(clash)}")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: the common fields, then the gate's details."""
        return {"name": self.name, "metric": self.metric, "op": self.op, "threshold": self.threshold,
                "value": self.value, "low": self.low, "high": self.high, "verdict": self.verdict,
                "message": self.message, **self.details}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Check":
        """Inverse of `to_json`."""
        common = set(_CHECK_KEYS)
        return cls(name=str(data["name"]), verdict=data["verdict"], message=str(data.get("message") or ""),
                   metric=str(data.get("metric") or ""), op=str(data.get("op") or ""),
                   threshold=data.get("threshold"), value=data.get("value"), low=data.get("low"),
                   high=data.get("high"), details={k: v for k, v in data.items() if k not in common})


def unique_names(checks: Iterable[Check]) -> tuple[Check, ...]:
    """The checks with names made unique in order (`x`, `x#2`, ...): properties must not collide."""
    seen: dict[str, int] = {}
    out = []
    for check in checks:
        count = seen.get(check.name, 0) + 1
        seen[check.name] = count
        out.append(check if count == 1 else replace(check, name=f"{check.name}#{count}"))
    return tuple(out)


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate test.

    `problems` are reasons the figures cannot be trusted (a broken workload contract, an input that
    could not be read): any problem makes the verdict ERROR. `locations` names the raw material
    (label -> path: `records`, `log`, `results_dir`). `figures` are the headline numbers (dotted
    names such as `ttft_ms.p99`) that go into JUnit properties. `details` are the gate's own
    summary.json fields, written beside the common ones.
    """

    kind: GateKind
    profile: str
    case_id: str
    verdict: Verdict
    checks: tuple[Check, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)
    simulated: bool = False
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    locations: Mapping[str, str | None] = field(default_factory=dict)
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def decide(cls, kind: GateKind, profile: str, case_id: str, checks: Iterable[Check], *,
               problems: Iterable[str] = (), allow_inconclusive: bool = False, **fields: Any) -> "GateResult":
        """A result whose verdict follows the one rule: ERROR on any problem, else `combine(checks)`."""
        checks = unique_names(checks)
        problems = tuple(problems)
        verdicts = [c.verdict for c in checks] + (["error"] if problems else [])
        verdict = combine(verdicts, allow_inconclusive=allow_inconclusive)
        return cls(kind=kind, profile=profile, case_id=case_id, verdict=verdict, checks=checks,
                   problems=problems, **fields)

    def __post_init__(self) -> None:
        unknown = set(self.locations) - set(LOCATION_KEYS)
        if unknown:
            raise ValueError(f"unknown location label(s) {sorted(unknown)}; known: {', '.join(LOCATION_KEYS)}")
        clash = set(self.details) & (set(_COMMON_KEYS) | set(LOCATION_KEYS))
        if clash:
            raise ValueError(f"details may not redefine {sorted(clash)}")

    @property
    def passed(self) -> bool:
        """True for a PASS."""
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        """The summary.json entry (plain JSON)."""
        return {
            "kind": self.kind, "profile": self.profile, "scenario_id": self.case_id,
            "simulated": self.simulated, "verdict": self.verdict,
            "metrics": dict(self.metrics), "figures": dict(self.figures),
            "checks": [c.to_json() for c in self.checks],
            "errors": list(self.problems), "warnings": list(self.warnings),
            **dict(self.locations), "fingerprint": dict(self.fingerprint), **dict(self.details),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GateResult":
        """Inverse of `to_json` (summary.json entries back into results)."""
        known = set(_COMMON_KEYS) | set(LOCATION_KEYS)
        return cls(
            kind=data["kind"], profile=str(data["profile"]), case_id=str(data["scenario_id"]),
            verdict=data["verdict"], checks=tuple(Check.from_json(c) for c in data.get("checks") or ()),
            metrics=dict(data.get("metrics") or {}), figures=dict(data.get("figures") or {}),
            simulated=bool(data.get("simulated")), problems=tuple(data.get("errors") or ()),
            warnings=tuple(data.get("warnings") or ()),
            locations={k: data[k] for k in LOCATION_KEYS if k in data},
            fingerprint=dict(data.get("fingerprint") or {}),
            details={k: v for k, v in data.items() if k not in known},
        )

    def failure_text(self) -> str:
        """Expected vs measured for every check that did not pass, the problems, and the raw material."""
        label = {"serving": "", "training": "training ", "accuracy": "accuracy "}[self.kind]
        lines = [f"{self.verdict.upper()}: {label}{self.profile} {self.case_id}"
                 + (" [SIMULATED]" if self.simulated else "")]
        for check in self.checks:
            if check.verdict != "pass":
                lines.append(f"  [{check.verdict}] {check.name}: {check.message}")
                record = check.details.get("record")
                if record:
                    lines.append(f"      deciding record: {record}")
        lines.extend(f"  {problem}" for problem in self.problems)
        lines.extend(f"  warning: {warning}" for warning in self.warnings)
        shown: list[str | None] = []
        for name, path in self.locations.items():
            if path is None or path not in shown:  # one folder can be both the results and the log
                lines.append(f"  {name}: {path or '-'}")
                shown.append(path)
        return "\n".join(lines)

    def junit_properties(self) -> list[tuple[str, Any]]:
        """Properties of the test case: unique, stable names (one per check, one per figure, and a few
        fingerprint fields: server version, model root, engine, hardware, prompt-set hash)."""
        props: list[tuple[str, Any]] = [(f"{JUNIT_PREFIX}verdict", self.verdict),
                                        (f"{JUNIT_PREFIX}simulated", self.simulated)]
        props += [(f"{JUNIT_PREFIX}{name}", value) for name, value in self.figures.items() if value is not None]
        props += [(f"{JUNIT_PREFIX}check.{c.name}", f"{c.verdict}: {c.message}") for c in self.checks]
        props += [(f"{JUNIT_PREFIX}fingerprint.{name}", self.fingerprint[name]) for name in JUNIT_FINGERPRINT
                  if self.fingerprint.get(name) is not None]
        if self.problems:
            props.append((f"{JUNIT_PREFIX}errors", "; ".join(self.problems)))
        if self.warnings:
            props.append((f"{JUNIT_PREFIX}warnings", "; ".join(self.warnings)))
        return props
