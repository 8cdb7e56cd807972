"""The serving gate: `cases(profiles, settings)` and `run(case, context) -> GateResult`.

One case is one scenario of one profile (or one cell of an ad-hoc grid given on the command
line). Running it: prompts -> load against the endpoint -> records -> metrics -> floors and
ceilings decided with confidence bounds, and the workload contract checked before any figure is
trusted. What cannot be measured is an ERROR, never a skip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report.journal import JsonLines, OnDisk, json_line
from ..report.store import RunFolder
from ..thresholds import Profile
from ..tokenizers import TextTokenizer, TokenizerError
from ..verdict import GateResult
from .contract import ClientHealth
from .journal import ScenarioEnd, ScenarioStart, ScenarioUnmeasured, decide, replay
from .judge import early_stop, look_every, planned_looks, retokenized_counts
from .measure import LoadRun, Progress, RecordWriter, RequestPlan, ServingTarget, plan_requests, prompt_seed, run_load
from .records import Deadlines, RequestRecord
from .replicas import wake_targets
from .routed import wake_endpoints
from .result import log_lines
from .spec import DEADLINE_KEYS, DEFAULT_DEADLINES, DEFAULT_ROUTING, Scenario
from .workload import WorkloadError

if TYPE_CHECKING:
    from ..context import GateContext
    from ..endpoint import Deployment, EndpointInfo
    from ..settings import Settings

ADHOC_PROFILE = "adhoc"
NO_ENDPOINT = ("no endpoint: pass --endpoint=URL (or sim://deepseek-v3 for the simulated engine); "
               "this scenario was not measured")
# An ad-hoc grid cell, where neither the command line nor a profile says otherwise.
ADHOC_INPUT_LEN = 512
ADHOC_OUTPUT_LEN = 128
ADHOC_NUM_PROMPTS = 50
ADHOC_WARMUP = 2


@dataclass(frozen=True)
class ServingCase:
    """One serving test: a profile and a scenario."""

    profile: Profile
    scenario: Scenario

    @property
    def id(self) -> str:
        """`profile:in2048-out1024-c1024`."""
        return f"{self.profile.name}:{self.scenario.ident}"


# ---------------------------------------------------------------------------------------------
# Cases


def adhoc_profile(settings: Settings) -> Profile:
    """The profile of an ad-hoc grid run without a thresholds file (figures reported, nothing gated)."""
    return Profile(name=ADHOC_PROFILE, model=settings.model, api=settings.layered("api", "completions"))


def _grid_loads(settings: Settings) -> list[dict[str, Any]]:
    """The load of each grid column: the request rates, else the concurrencies, else one client."""
    return ([{"request_rate": rate} for rate in settings.request_rate]
            or [{"concurrency": c} for c in settings.concurrency]
            or [{"concurrency": 1}])


def adhoc_cases(profiles: Sequence[Profile], settings: Settings) -> list[ServingCase]:
    """One case per cell of --deepseek-input-len x --deepseek-output-len x load, under each profile
    (or the "adhoc" profile when there is none)."""
    cases = []
    for profile in list(profiles) or [adhoc_profile(settings)]:
        for input_len in settings.input_len or (ADHOC_INPUT_LEN,):
            for output_len in settings.output_len or (ADHOC_OUTPUT_LEN,):
                for load in _grid_loads(settings):
                    scenario = Scenario(
                        input_len=input_len,
                        output_len=output_len,
                        num_prompts=settings.layered("num_prompts", ADHOC_NUM_PROMPTS),
                        warmup=settings.layered("warmup", ADHOC_WARMUP),
                        dataset=settings.layered("dataset", "random"),
                        dataset_path=settings.layered("dataset_path"),
                        early_stop=settings.layered("early_stop"),
                        allow_inconclusive=settings.layered("allow_inconclusive"),
                        confidence=profile.confidence,
                        error_budget=profile.error_budget,
                        **load,
                    )
                    cases.append(ServingCase(profile, scenario))
    return cases


def with_options(scenario: Scenario, settings: Settings) -> Scenario:
    """The scenario with the command line's values in place of the file's (recorded in the results).

    A single --deepseek-concurrency or --deepseek-request-rate replaces the load of a closed or
    open scenario (a latency batch keeps its shape).
    """
    changes: dict[str, Any] = {
        "num_prompts": settings.layered("num_prompts", scenario.num_prompts),
        "warmup": settings.layered("warmup", scenario.warmup),
        "dataset": settings.layered("dataset", scenario.dataset),
        "dataset_path": settings.layered("dataset_path", scenario.dataset_path),
        "early_stop": settings.layered("early_stop", scenario.early_stop),
        "allow_inconclusive": settings.layered("allow_inconclusive", scenario.allow_inconclusive),
    }
    if scenario.batch_size is None and len(settings.concurrency) == 1:
        changes.update(concurrency=settings.concurrency[0], request_rate=None)
    if scenario.batch_size is None and len(settings.request_rate) == 1:
        changes.update(request_rate=settings.request_rate[0], concurrency=None)
    return replace(scenario, **changes)


def cases(profiles: Sequence[Profile], settings: Settings) -> list[ServingCase]:
    """The serving tests of a run: the ad-hoc grid when --deepseek-input-len/--deepseek-output-len
    are given (no thresholds file needed), else every scenario of the profiles, options applied."""
    if settings.adhoc_grid:
        return adhoc_cases(profiles, settings)
    return [ServingCase(profile, with_options(scenario, settings))
            for profile in profiles for scenario in profile.scenarios]


# ---------------------------------------------------------------------------------------------
# Running one case


def api_of(case: ServingCase, settings: Settings) -> str:
    """--deepseek-api > the scenario's api > the profile's."""
    return str(settings.layered("api", case.scenario.api, case.profile.api))


def deadlines_for(case: ServingCase, settings: Settings) -> Deadlines:
    """Each per-request deadline: its option > the scenario's key > the profile's (or the file's
    defaults:) > the built-in default."""
    return Deadlines(**{
        field: settings.layered(option, getattr(case.scenario, key), case.profile.deadlines.get(key),
                                getattr(DEFAULT_DEADLINES, field))
        for key, option, field in DEADLINE_KEYS
    })


def routing_of(profile: Profile, settings: Settings) -> str:
    """How requests are spread over a deployment's replicas: --deepseek-routing > the profile's
    routing: > round-robin."""
    return str(settings.layered("routing", profile.routing, DEFAULT_ROUTING))


def target_for(case: ServingCase, endpoint: EndpointInfo, settings: Settings,
               deployment: Deployment | None = None) -> ServingTarget:
    """Where and how this case sends: the endpoint (or the deployment of several URLs it is the first
    replica of), with the options layered over the profile. Per-node figures divide by the
    profile's nodes, however many URLs the deployment has."""
    replicas = deployment.replicas if deployment is not None else (endpoint,)
    woken = deployment.warmup if deployment is not None else ()
    return ServingTarget(
        base_url=endpoint.base_url,
        model=endpoint.model,
        api=api_of(case, settings),  # type: ignore[arg-type]
        api_key=settings.api_key,
        simulated=any(info.simulated for info in (endpoint, *replicas, *woken)),
        has_tokenize=endpoint.has_tokenize,
        nodes=settings.layered("nodes", case.profile.nodes),
        devices_per_node=settings.layered("devices_per_node", case.profile.devices_per_node),
        deadlines=deadlines_for(case, settings),
        tls=endpoint.tls,
        replicas=tuple(info.base_url for info in replicas) if len(replicas) > 1 else (),
        warmup_urls=tuple(info.base_url for info in woken),
        routing=routing_of(case.profile, settings),
    )


def _not_measured(case: ServingCase, ctx: GateContext, api: str, simulated: bool, problem: str) -> GateResult:
    """The ERROR of a scenario that could not be measured, written to records.jsonl first."""
    line = ScenarioUnmeasured(nodeid=ctx.nodeid, profile=case.profile.name, case_id=case.scenario.ident,
                              scenario=case.scenario, api=api, simulated=simulated, problem=problem,
                              fingerprint=ctx.fingerprint)
    ctx.folder.append_lines(ctx.folder.records_path, [json_line(line.to_json())])
    return line.result()


def not_run(case: ServingCase, ctx: GateContext, problem: str) -> GateResult:
    """The ERROR of a case that is not run at all (the session deadline passed), noted in records.jsonl."""
    return _not_measured(case, ctx, api_of(case, ctx.settings), bool(ctx.endpoint and ctx.endpoint.simulated),
                         problem)


def run(case: ServingCase, ctx: GateContext) -> GateResult:
    """Measure the case against the endpoint and decide its floors and ceilings.

    Without an endpoint, a tokenizer or a prompt set the result is an ERROR saying why.
    """
    endpoint = ctx.endpoint
    if endpoint is None:
        return _not_measured(case, ctx, api_of(case, ctx.settings), False, NO_ENDPOINT)
    target = target_for(case, endpoint, ctx.settings, ctx.deployment)
    try:
        tokenizer = ctx.tokenizer()
    except TokenizerError as exc:
        return _not_measured(case, ctx, target.api, target.simulated, f"the tokenizer could not be loaded: {exc}")
    try:
        with _holding(ctx, ctx.deployment.replicas if ctx.deployment is not None else (endpoint,)):
            return measure_case(case, target, tokenizer, ctx)
    except WorkloadError as exc:
        return _not_measured(case, ctx, target.api, target.simulated, f"the workload could not be built: {exc}")


@contextlib.contextmanager
def _holding(ctx: GateContext, endpoints: Sequence[EndpointInfo]) -> Iterator[None]:
    """Hold every endpoint measured on (`GateContext.measuring`), each lock once and always in the
    same order, so that two deployments sharing a replica never wait for each other in a circle."""
    with contextlib.ExitStack() as stack:
        for info in sorted({info.lock_name: info for info in endpoints}.values(), key=lambda info: info.lock_name):
            stack.enter_context(ctx.measuring(info))
        yield


def _wake(target: ServingTarget, plan: RequestPlan, request_prefix: str, writer: RecordWriter
          ) -> tuple[RequestPlan, list[RequestRecord], str | None]:
    """Wake every URL of a deployment of several (one warm-up request each, all at once) before the
    load: the plan left for the load, the records of the wake-up (written as they finish) and what
    failed (None when every URL answered)."""
    count = len(wake_targets(len(target.replica_urls()), len(target.warmup_urls)))
    if not count:
        return plan, [], None
    woken: list[RequestRecord] = []

    def keep(record: RequestRecord) -> None:
        writer.write(record)
        woken.append(record)

    problem = wake_endpoints(target, plan.warmup[:count], request_prefix=request_prefix, on_record=keep)
    return replace(plan, warmup=plan.warmup[count:]), woken, problem


def measure_case(case: ServingCase, target: ServingTarget, tokenizer: TextTokenizer | None,
                 ctx: GateContext) -> GateResult:
    """Build the prompts, run the load, judge the run, write its log (the endpoint already held).

    records.jsonl gets the scenario's start line before the first request and its end line after
    the last, so the result can be decided again from the file alone (`journal.decide`).
    """
    scenario, case_id = case.scenario, case.scenario.ident
    plan = plan_requests(scenario, target, tokenizer, seed=prompt_seed(case.profile.name, case_id, scenario.seed))
    looks = planned_looks(scenario)
    log_path = ctx.folder.log_path(ctx.nodeid)
    start = ScenarioStart(nodeid=ctx.nodeid, profile=case.profile.name, case_id=case_id, scenario=scenario,
                          target=target, facts=plan.facts, looks=looks, planned=len(plan.measured),
                          records=str(ctx.folder.records_path), log=str(log_path), fingerprint=ctx.fingerprint)
    ctx.folder.append_lines(ctx.folder.records_path, [json_line(start.to_json())])
    prefix, writer = f"{ctx.folder.run_id}-{case.profile.name}-{case_id}", RecordWriter(ctx.folder, ctx.nodeid, case_id)
    plan, woken, problem = _wake(target, plan, prefix, writer)
    if problem is not None:
        writer.close()
        return _not_measured(case, ctx, target.api, target.simulated, f"not measured: {problem}")
    progress = Progress(f"{case.profile.name}:{case_id}", len(plan.measured), ctx.progress)
    load = run_load(
        LoadRun(scenario, target, plan, request_prefix=prefix, tokenizer=tokenizer,
                should_stop=early_stop(scenario, target, looks, on_look=progress.look),
                check_every=look_every(len(plan.measured)), session_deadline=ctx.session_deadline),
        writer,
        progress,
        workers=ctx.settings.load_workers,
        cluster=ctx.settings.load_cluster,
    )
    cut_short = f"{load.cut_short}; records: {ctx.folder.records_path}" if load.cut_short else None
    end = ScenarioEnd.of(ctx.nodeid, case_id, load, ClientHealth.of(load.health),
                         retokenized_counts(load.records, tokenizer), cut_short)
    ctx.folder.append_lines(ctx.folder.records_path, [json_line(end.to_json())])
    decision = decide(start, woken + load.records, end)
    lines = log_lines(decision.result, decision.metrics, load.records, load.batch_latencies_ms)
    log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return decision.result


# ---------------------------------------------------------------------------------------------
# Reading a run back


def on_disk(run_dir: Path) -> OnDisk:
    """The results a run's records.jsonl holds, decided again from its lines (see `journal`)."""
    lines = JsonLines(RunFolder(run_dir.parent, run_dir.name).records_path)
    results, incomplete = replay(lines)
    return OnDisk(results, incomplete, lines.torn)
