"""What a serving scenario writes into records.jsonl besides its requests, and the result decided from it.

records.jsonl holds, for each scenario and in this order:
- a `scenario` line when it starts: the test, the profile, the scenario as asked (floors,
  ceilings, confidence, client limits, ...), the target's topology, model and API, the prompt
  set's facts and the session's part of the fingerprint;
- one line per request (no `type`), tagged with `nodeid` and `scenario`, as requests finish;
- a `scenario_end` line once the load is over: the window the run is judged on, the client's own
  health, whether it stopped early, the latency batches and the client's token counts.
A scenario that could not be measured writes one `scenario_unmeasured` line saying why.

`decide` turns these into the scenario's `GateResult`. The gate calls it at the end of a run and
`pytest-deepseek report` calls it on the lines read back, so both give the same result; a
scenario with no end line (the run was killed or interrupted) is reported as incomplete.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..fingerprint import redacted_url
from ..report.journal import Incomplete, Replayed
from ..verdict import GateResult
from .contract import ClientHealth, ContractViolation
from .failures import summarize_failures
from .judge import as_check, contract_violations, deciding_timeline, judge
from .load import LoadResult
from .measure import ServingTarget
from .metrics import RunMetrics
from .records import RequestRecord, RunTimeline
from .replicas import EndpointFigures, endpoint_breakdown
from .result import measured_result, unmeasured_result
from .spec import Scenario

START = "scenario"
END = "scenario_end"
UNMEASURED = "scenario_unmeasured"
# The tags RecordWriter adds to each request record: which test, which scenario.
TAGS = ("nodeid", "scenario")
_SCENARIO_FIELDS = tuple(f.name for f in dataclasses.fields(Scenario))


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    """Every field of the scenario as plain JSON (an infinite request rate as "inf")."""
    out: dict[str, Any] = {}
    for name in _SCENARIO_FIELDS:
        value = getattr(scenario, name)
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, float) and math.isinf(value):
            value = "inf"
        out[name] = value
    return out


def scenario_from_json(data: Mapping[str, Any]) -> Scenario:
    """Inverse of `scenario_json`."""
    values = {name: data[name] for name in _SCENARIO_FIELDS if name in data}
    if values.get("request_rate") == "inf":
        values["request_rate"] = math.inf
    return Scenario(**values)


def _timeline_from_json(data: Mapping[str, Any]) -> RunTimeline:
    return RunTimeline(**data)


@dataclass(frozen=True)
class ScenarioStart:
    """The `scenario` line: everything a result needs besides the records and the end line."""

    nodeid: str
    profile: str
    case_id: str
    scenario: Scenario
    target: ServingTarget
    facts: Mapping[str, Any]  # prompt_set_hash, prompt_seed, prompt_alignment, count_offset
    looks: int  # planned looks at the verdict (early stopping)
    planned: int  # measured requests planned
    records: str  # where the records are
    log: str  # the scenario's log
    fingerprint: Mapping[str, Any] = field(default_factory=dict)  # the session's part
    at: float = field(default_factory=time.time)  # when the scenario started (orders rebuilt results)

    def to_json(self) -> dict[str, Any]:
        """The line (plain JSON)."""
        return {
            "type": START, "nodeid": self.nodeid, "scenario": self.case_id, "profile": self.profile,
            "definition": scenario_json(self.scenario),
            "target": self.target.to_json(),
            "facts": dict(self.facts), "looks": self.looks, "planned": self.planned,
            "records": self.records, "log": self.log, "fingerprint": dict(self.fingerprint), "at": self.at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ScenarioStart":
        """Inverse of `to_json`."""
        return cls(
            nodeid=str(data["nodeid"]), profile=str(data["profile"]), case_id=str(data["scenario"]),
            scenario=scenario_from_json(data["definition"]), target=ServingTarget.from_json(data["target"]),
            facts=dict(data.get("facts") or {}), looks=int(data["looks"]), planned=int(data["planned"]),
            records=str(data["records"]), log=str(data["log"]), fingerprint=dict(data.get("fingerprint") or {}),
            at=float(data.get("at") or 0.0),
        )


@dataclass(frozen=True)
class ScenarioEnd:
    """The `scenario_end` line: what the load generator knew at the end that the records do not say."""

    nodeid: str
    case_id: str
    timeline: RunTimeline  # the window the run is judged on (the deciding look's when stopped early)
    health: ClientHealth
    stopped_early: bool = False
    batch_latencies_ms: tuple[float, ...] = ()
    retokenized: Mapping[int, int] | None = None  # record index -> the client's count of its output tokens
    cut_short: str | None = None  # why the load stopped before its plan ran out (a problem: ERROR)
    warnings: tuple[str, ...] = ()  # `LoadResult.warnings`: said in the report, the verdict unchanged

    @classmethod
    def of(cls, nodeid: str, case_id: str, load: LoadResult, health: ClientHealth,
           retokenized: Mapping[int, int] | None, cut_short: str | None = None) -> "ScenarioEnd":
        """The end of a finished load."""
        return cls(nodeid=nodeid, case_id=case_id, timeline=deciding_timeline(load), health=health,
                   stopped_early=load.stopped_early, batch_latencies_ms=tuple(load.batch_latencies_ms),
                   retokenized=retokenized, cut_short=cut_short, warnings=load.warnings)

    def to_json(self) -> dict[str, Any]:
        """The line (plain JSON; the token counts keyed by record index)."""
        return {
            "type": END, "nodeid": self.nodeid, "scenario": self.case_id,
            "timeline": dataclasses.asdict(self.timeline),
            "health": dataclasses.asdict(self.health),
            "stopped_early": self.stopped_early, "batch_latencies_ms": list(self.batch_latencies_ms),
            "retokenized": None if self.retokenized is None else {str(k): v for k, v in self.retokenized.items()},
            "cut_short": self.cut_short,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ScenarioEnd":
        """Inverse of `to_json`."""
        counts = data.get("retokenized")
        return cls(
            nodeid=str(data["nodeid"]), case_id=str(data["scenario"]), timeline=_timeline_from_json(data["timeline"]),
            health=ClientHealth.from_json(data["health"]), stopped_early=bool(data.get("stopped_early")),
            batch_latencies_ms=tuple(data.get("batch_latencies_ms") or ()),
            retokenized=None if counts is None else {int(k): int(v) for k, v in counts.items()},
            cut_short=data.get("cut_short"),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
        )


@dataclass(frozen=True)
class ScenarioUnmeasured:
    """The `scenario_unmeasured` line: a scenario that could not be measured, and why (an ERROR)."""

    nodeid: str
    profile: str
    case_id: str
    scenario: Scenario
    api: str
    simulated: bool
    problem: str
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def result(self) -> GateResult:
        """The scenario's ERROR."""
        return unmeasured_result(profile=self.profile, case_id=self.case_id, scenario=self.scenario, api=self.api,
                                 simulated=self.simulated, problem=self.problem)

    def to_json(self) -> dict[str, Any]:
        """The line (plain JSON)."""
        return {"type": UNMEASURED, "nodeid": self.nodeid, "scenario": self.case_id, "profile": self.profile,
                "definition": scenario_json(self.scenario), "api": self.api, "simulated": self.simulated,
                "problem": self.problem, "fingerprint": dict(self.fingerprint), "at": self.at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ScenarioUnmeasured":
        """Inverse of `to_json`."""
        return cls(nodeid=str(data["nodeid"]), profile=str(data["profile"]), case_id=str(data["scenario"]),
                   scenario=scenario_from_json(data["definition"]), api=str(data["api"]),
                   simulated=bool(data.get("simulated")), problem=str(data["problem"]),
                   fingerprint=dict(data.get("fingerprint") or {}), at=float(data.get("at") or 0.0))


@dataclass(frozen=True)
class Decision:
    """A scenario's result and the figures it was drawn from."""

    result: GateResult
    metrics: RunMetrics


def decide(start: ScenarioStart, records: Sequence[RequestRecord], end: ScenarioEnd) -> Decision:
    """The scenario's result: its figures over the judged window, every floor and ceiling decided,
    the workload contract checked (pure: the same lines give the same result)."""
    scenario, target = start.scenario, start.target
    judgement = judge(records, end.timeline, scenario, target, start.looks)
    result = measured_result(
        profile=start.profile, case_id=start.case_id, scenario=scenario, api=target.api, model=target.model,
        simulated=target.simulated, nodes=target.nodes, devices_per_node=target.devices_per_node,
        metrics=judgement.metrics, checks=[as_check(r) for r in judgement.results],
        violations=contract_violations(scenario, records, end.health, end.retokenized) + cut_short(end),
        health=end.health,
        stopped_early=end.stopped_early, batch_latencies_ms=end.batch_latencies_ms, facts=start.facts,
        records=start.records, log=start.log, failures=summarize_failures(records),
        endpoints=endpoints_of(target, records), warnings=end.warnings,
    )
    return Decision(result, judgement.metrics)


def endpoints_of(target: ServingTarget, records: Sequence[RequestRecord]) -> list[EndpointFigures]:
    """Each endpoint's figures when the target has several URLs (none for one URL)."""
    urls = target.endpoint_urls()
    if len(urls) < 2:
        return []
    return endpoint_breakdown(records, [redacted_url(url) for url in urls], len(target.replica_urls()))


def cut_short(end: ScenarioEnd) -> list[ContractViolation]:
    """A load stopped before its plan ran out (error budget blown, session deadline) is an ERROR."""
    return [ContractViolation("cut_short", end.cut_short, 1)] if end.cut_short else []


def request_record(line: Mapping[str, Any]) -> RequestRecord:
    """A request record read back from records.jsonl (its tags removed)."""
    return RequestRecord.from_json_dict({k: v for k, v in line.items() if k not in TAGS})


@dataclass
class _Block:
    start: ScenarioStart
    records: list[RequestRecord] = field(default_factory=list)


def replay(lines: Iterable[Mapping[str, Any]]) -> tuple[list[Replayed], list[Incomplete]]:
    """The results of the scenarios in records.jsonl's lines, and those that never ended.

    A scenario started again later in the same run (a continued run) replaces its unfinished
    attempt. Lines of an unknown type are ignored.
    """
    open_blocks: dict[tuple[str, str], _Block] = {}
    done: list[Replayed] = []
    for line in lines:
        key = (str(line.get("nodeid")), str(line.get("scenario")))
        kind = line.get("type")
        if kind is None:
            block = open_blocks.get(key)
            if block is not None:
                block.records.append(request_record(line))
        elif kind == START:
            start = ScenarioStart.from_json(line)
            open_blocks[key] = _Block(start)
        elif kind == END:
            block = open_blocks.pop(key, None)
            if block is not None:
                result = decide(block.start, block.records, ScenarioEnd.from_json(line)).result
                done.append(Replayed(block.start.nodeid, result, block.start.fingerprint, block.start.at))
        elif kind == UNMEASURED:
            unmeasured = ScenarioUnmeasured.from_json(line)
            open_blocks.pop(key, None)
            done.append(Replayed(unmeasured.nodeid, unmeasured.result(), unmeasured.fingerprint, unmeasured.at))
    incomplete = [Incomplete("serving", b.start.nodeid, b.start.profile, b.start.case_id,
                             recorded=sum(1 for r in b.records if not r.warmup), planned=b.start.planned,
                             at=b.start.at) for b in open_blocks.values()]
    return done, incomplete
