"""The pytest11 entry point of pytest-deepseek: options, markers, header, parametrization, summary.

Everything with substance lives elsewhere: settings resolution (`settings`), run state (`session`),
fixtures (`fixtures`), the gates (`gates`: serving, training, accuracy), result collection and tables
(`report`). Under xdist the controller opens the endpoints (one per distinct URL; each profile is
measured against its own) and owns the results files; workers get the run id and the checked
endpoints through `workerinput` and send results back on their reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .endpoint import Deployment, EndpointInfo, EndpointSetupError, open_endpoint
from .fingerprint import redacted_url
from .gates import GATES, GATES_BY_KIND, Gate
from .report.collect import CARRIED_ATTR, RESULT_ATTR, RESULT_KEY, ResultCollector
from .report.store import new_run_id
from .session import RunState, now_iso
from .tokenizers import EMBEDDED_NAME
from .settings import OPTIONS, EndpointPlan, Settings, SettingsError, describe_profiles, resolve
from .thresholds import Profile, ThresholdsError

pytest_plugins = ("pytest_deepseek.fixtures",)

STATE_KEY = pytest.StashKey[RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deepseek", "pytest-deepseek release gate")
    for spec in OPTIONS:
        kwargs: dict[str, Any] = {"dest": f"deepseek_{spec.name}", "help": spec.help}
        if spec.kind == "bool":
            kwargs["action"] = "store_true"
            kwargs["default"] = None
        elif spec.kind in ("list", "intlist", "ratelist"):
            kwargs["action"] = "append"
            kwargs["metavar"] = spec.metavar
        else:
            kwargs["metavar"] = spec.metavar
        group.addoption(spec.flag, **kwargs)
        if spec.ini:
            ini_type = "bool" if spec.kind == "bool" else ("args" if spec.kind == "list" else "string")
            parser.addini(f"deepseek_{spec.name}", spec.help, type=ini_type, default=None)


def _usage_error(exc: Exception | str) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-deepseek: {exc}")


def pytest_configure(config: pytest.Config) -> None:
    for gate in GATES:
        config.addinivalue_line("markers", f"{gate.marker}: {gate.description}")
    try:
        settings = resolve(
            lambda name: config.getoption(f"deepseek_{name}"),
            lambda name: config.getini(name),
            rootdir=Path(config.rootpath),
            invocation_dir=Path(config.invocation_params.dir),
        )
    except SettingsError as exc:
        raise _usage_error(exc) from exc
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "deepseek_run_id" in workerinput:
        state = RunState(settings=settings, run_id=workerinput["deepseek_run_id"],
                         started=workerinput["deepseek_started"], is_worker=True,
                         carried=workerinput.get("deepseek_carried") or {},
                         started_at=workerinput.get("deepseek_started_at") or time.time())
        if workerinput.get("deepseek_endpoint"):
            state.endpoint = EndpointInfo.from_json(workerinput["deepseek_endpoint"])
        state.endpoints = {name: EndpointInfo.from_json(data)
                           for name, data in (workerinput.get("deepseek_endpoints") or {}).items()}
        state.deployments = {name: Deployment.from_json(data)
                             for name, data in (workerinput.get("deepseek_deployments") or {}).items()}
        if workerinput.get("deepseek_default_deployment"):
            state.default_deployment = Deployment.from_json(workerinput["deepseek_default_deployment"])
    elif settings.resume is not None:
        state = _resumed_state(settings.resume, settings)
    else:
        state = RunState(settings=settings, run_id=new_run_id(), started=now_iso())
    config.stash[STATE_KEY] = state
    if settings.gate_requested:
        _check_gate_inputs(state)
    _read_baseline(state)
    if not state.is_worker:
        state.command_line = tuple(config.invocation_params.args)  # secrets removed when written
        _check_html_report(settings)
        config.pluginmanager.register(ResultCollector(state), "deepseek-collector")
        _open_endpoints(config, state)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "deepseek-xdist")


def _check_html_report(settings: Settings) -> None:
    """--deepseek-html without its plotting library is a usage error now, not after a long run."""
    if settings.html is None:
        return
    from .report.html import HtmlReportError, require_matplotlib

    try:
        require_matplotlib()
    except HtmlReportError as exc:
        raise pytest.UsageError(f"pytest-deepseek: --deepseek-html: {exc}") from exc


def _resumed_state(run_dir: Path, settings: Settings) -> RunState:
    """The state of a session continuing the run in `run_dir`: its id, its finished tests."""
    from .report.resume import finished_tests, ready_to_append

    finished = finished_tests(run_dir)
    ready_to_append(run_dir)
    return RunState(settings=settings, run_id=run_dir.name, started=finished.started or now_iso(),
                    resumed=now_iso(), carried=dict(finished.entries))


def _check_gate_inputs(state: RunState) -> None:
    """With a gate option given, a malformed thresholds file or an unknown --deepseek-profile is one
    usage error before collection (choosing among several profiles is left to the gates' tests)."""
    settings = state.settings
    try:
        thresholds = state.thresholds
        if settings.profile:
            if thresholds is None:
                state.selected_profiles()  # the error that says which file is missing
            else:
                thresholds.select(settings.profile)
        if (len(settings.concurrency) > 1 or len(settings.request_rate) > 1) and not settings.adhoc_grid:
            raise ThresholdsError("several --deepseek-concurrency/--deepseek-request-rate values make a grid: give "
                                  "--deepseek-input-len and --deepseek-output-len too, or one value to override "
                                  "the profile's scenarios")
        _check_endpoint_plan(state)
    except (ThresholdsError, SettingsError) as exc:
        raise _usage_error(exc) from exc


def _check_endpoint_plan(state: RunState) -> None:
    """--endpoint values that name an unknown profile, or leave a selected profile that measures an
    endpoint without one, are a `SettingsError` that lists the profiles."""
    if not state.settings.endpoint_given:
        return  # no endpoint at all: `pytest_collection_finish` names the option
    plan = state.endpoint_plan()
    adhoc = state.settings.adhoc_grid
    missing = [p.name for p in state.profiles_or_none()
               if plan.url_for(p.name) is None and (adhoc or _profile_needs_endpoint(p, state))]
    if missing:
        raise SettingsError(f"no endpoint for profile(s) {', '.join(missing)}: give --endpoint PROFILE=URL or "
                            f"the profile's endpoint: key; {describe_profiles(state.endpoint_keys())}")


def _read_baseline(state: RunState) -> None:
    """--deepseek-baseline read once, before any test: a name that is neither a run folder nor a saved
    baseline is one usage error (naming the saved ones)."""
    if state.settings.baseline is None:
        return
    from .regression.baseline import BaselineError

    try:
        state.baseline()
    except BaselineError as exc:
        raise pytest.UsageError(f"pytest-deepseek: --deepseek-baseline: {exc}") from exc


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """--deepseek-save-baseline: the controller saves the finished run (after its final summary was
    written), not an interrupted one."""
    state = config.stash.get(STATE_KEY, None)
    collector = config.pluginmanager.getplugin("deepseek-collector")
    if state is None or state.is_worker or state.settings.save_baseline is None or collector is None:
        return
    if collector.interrupted or not (collector.active or collector.results):
        return
    from .regression.baseline import BaselineError, save_baseline

    try:
        saved = save_baseline(state.folder.path, state.settings.save_baseline, state.settings.results_dir)
        line = f"deepseek: saved this run as the baseline {saved}"
    except BaselineError as exc:
        line = f"deepseek: could not save this run as a baseline: {exc}"
    terminal = config.pluginmanager.getplugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(line)


def _open_endpoints(config: pytest.Config, state: RunState) -> None:
    """Open each distinct endpoint URL once (a `sim://` URL starts its own simulator; replicas and
    URLs only woken up are checked like any endpoint) and give each selected profile its endpoint,
    or its deployment of several; a failure is one usage error naming the URL's place."""
    settings = state.settings
    if not settings.endpoint_given or config.option.collectonly:  # listing tests starts no server
        return
    plan = state.endpoint_plan()
    urls = plan.urls() + plan.warmup_urls()
    stack = contextlib.ExitStack()
    config.add_cleanup(stack.close)
    opened: dict[str, EndpointInfo] = {}
    for url in urls:
        # one endpoint keeps its files where they always were; several get a folder each
        workdir = state.folder.path if len(urls) == 1 else state.folder.path / "endpoints" / _endpoint_folder(plan, url)
        try:
            opened[url] = stack.enter_context(open_endpoint(
                url, model=state.model_hint(plan.profiles_of(url)), api_key=settings.api_key, workdir=workdir,
                tls=settings.tls))
        except EndpointSetupError as exc:
            raise _usage_error(exc if len(urls) == 1 else f"{plan.role_of(url)}: {exc}") from exc
    state.endpoints = {name: opened[url] for name, url in plan.by_profile.items()}
    state.deployments = {name: deployment for name in plan.deployments
                         if (deployment := _deployment(plan.urls_for(name), plan.warmup_for(name), opened))}
    state.default_deployment = _deployment(plan.default_urls, plan.default_warmup, opened)
    default = plan.default if plan.default in opened else (urls[0] if len(urls) == 1 else None)
    state.endpoint = opened[default] if default is not None else None


def _deployment(urls: tuple[str, ...], warmup: tuple[str, ...], opened: dict[str, EndpointInfo]) -> Deployment | None:
    """The opened endpoints of a deployment of several URLs (None for one URL alone, or none)."""
    if len(urls) + len(warmup) < 2 or not all(url in opened for url in urls + warmup):
        return None
    return Deployment(tuple(opened[url] for url in urls), tuple(opened[url] for url in warmup))


def _endpoint_folder(plan: EndpointPlan, url: str) -> str:
    """A folder name for an endpoint's files (a simulator's truth and log), from its place in the plan."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in plan.label_of(url))[:80]


class _XdistHooks:
    """Registered only when xdist is installed: hands run state to workers."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["deepseek_run_id"] = self.state.run_id
        node.workerinput["deepseek_started"] = self.state.started
        node.workerinput["deepseek_started_at"] = self.state.started_at
        node.workerinput["deepseek_carried"] = self.state.carried
        if self.state.endpoint is not None:
            node.workerinput["deepseek_endpoint"] = self.state.endpoint.to_json()
        node.workerinput["deepseek_endpoints"] = {name: info.to_json() for name, info in self.state.endpoints.items()}
        node.workerinput["deepseek_deployments"] = {name: deployment.to_json()
                                                    for name, deployment in self.state.deployments.items()}
        if self.state.default_deployment is not None:
            node.workerinput["deepseek_default_deployment"] = self.state.default_deployment.to_json()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.settings.gate_requested:
        return None
    profiles = ", ".join(p.name for p in state.profiles_or_none()) or "(to be chosen: --deepseek-profile)"
    lines = [f"deepseek: WARNING: TLS {state.settings.tls.describe()}"] if state.settings.insecure else []
    lines += _endpoint_lines(state)
    lines.append(
        f"deepseek: profile {profiles}; tokenizer {state.tokenizer_spec() or EMBEDDED_NAME}; "
        f"results {state.settings.results_dir / state.run_id}"
    )
    if state.resumed:
        lines.append(f"deepseek: continuing run {state.run_id}: {len(state.carried)} finished test(s); those "
                     "decided under the same conditions carry their results over")
    return lines


def _endpoint_lines(state: RunState) -> list[str]:
    """One header line per opened endpoint; with several, each says which profiles it measures (and
    its place in a deployment of several URLs)."""
    opened = state.distinct_endpoints()
    lines = []
    for endpoint in opened:
        label = " [SIMULATED: not a release verdict]" if endpoint.simulated else ""
        users = [name + _place(state.deployments.get(name), endpoint) for name, info in state.endpoints.items()
                 if info.url == endpoint.url or _place(state.deployments.get(name), endpoint)]
        place = _place(state.default_deployment, endpoint).removeprefix(", ")  # a run of no profile's
        used_by = f" (profile {', '.join(users)})" if len(opened) > 1 and users else (f" ({place})" if place else "")
        lines.append(f"deepseek: endpoint {redacted_url(endpoint.url)} -> {redacted_url(endpoint.base_url)}, "
                     f"model {endpoint.model}{label}{used_by}")
    return lines


def _place(deployment: Deployment | None, endpoint: EndpointInfo) -> str:
    """`, replica 2 of 3` or `, warm-up only` when `endpoint` is part of `deployment` ("" otherwise)."""
    if deployment is None:
        return ""
    replicas = [info.url for info in deployment.replicas]
    if endpoint.url in replicas and len(replicas) > 1:
        return f", replica {replicas.index(endpoint.url) + 1} of {len(replicas)}"
    return ", warm-up only" if endpoint.url in [info.url for info in deployment.warmup] else ""


def _gate_profiles(state: RunState, gate: Gate) -> list[Profile]:
    """The profiles a gate's cases come from; an ad-hoc serving grid needs no thresholds file."""
    settings = state.settings
    if gate.kind == "serving" and settings.adhoc_grid and not settings.profile:
        return state.profiles_or_none()
    return state.selected_profiles()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    for gate in GATES:
        if gate.case_fixture not in metafunc.fixturenames:
            continue
        try:
            cases = gate.module().cases(_gate_profiles(state, gate), state.settings)
        except ThresholdsError as exc:
            pytest.fail(f"pytest-deepseek: {exc}", pytrace=False)
        params = [pytest.param(c, marks=getattr(pytest.mark, gate.marker)) for c in cases]
        metafunc.parametrize(gate.case_fixture, params, ids=[c.id for c in cases], indirect=True)
    if "deepseek_endpoint" in metafunc.fixturenames and not any(
            gate.case_fixture in metafunc.fixturenames for gate in GATES):
        endpoints = _checked_endpoints(state)
        if endpoints:
            metafunc.parametrize("deepseek_endpoint", list(endpoints), ids=list(endpoints.values()), indirect=True)


def _checked_endpoints(state: RunState) -> dict[str, str]:
    """URL -> test id part of each endpoint the endpoint checks run against, when a run measures
    several (empty otherwise: the one endpoint needs no parameter; URLs only woken up are not
    checked beyond their model list). From the settings and the thresholds file alone, so that
    every xdist worker collects the same tests."""
    if not state.settings.endpoint_given:
        return {}
    try:
        plan = state.endpoint_plan()
    except (ThresholdsError, SettingsError):
        return {}
    urls = plan.urls()
    return {url: plan.label_of(url) for url in urls} if len(urls) > 1 else {}


def _case_of(item: pytest.Item, gate: Gate) -> Any:
    """The gate case a test item runs, or None (not a gate test, or an empty parameter set)."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(gate.case_fixture) if callspec is not None else None
    return case if hasattr(case, "profile") else None


def _is_gate_test(item: pytest.Item, gate: Gate) -> bool:
    return gate.case_fixture in getattr(item, "fixturenames", ())


def _endpoint_check(item: pytest.Item) -> bool:
    """A test of the endpoint suite: it needs the endpoint and is no gate's case."""
    fixturenames = getattr(item, "fixturenames", ())
    return "deepseek_endpoint" in fixturenames and not any(_is_gate_test(item, gate) for gate in GATES)


def _profile_needs_endpoint(profile: Profile, state: RunState) -> bool:
    from .accuracy.gate import needs_endpoint

    return bool(profile.scenarios) or needs_endpoint(profile, state.settings)


def _needs_endpoint(item: pytest.Item, state: RunState) -> bool:
    if _endpoint_check(item):
        return True
    if _case_of(item, GATES_BY_KIND["serving"]) is not None:
        return True
    case = _case_of(item, GATES_BY_KIND["accuracy"])
    if case is None:
        return False
    from .accuracy.gate import needs_endpoint

    return needs_endpoint(case.profile, state.settings)


def _not_applicable(item: pytest.Item, state: RunState) -> bool:
    """A gate test with no case for the selected profiles (an empty parameter set), or an endpoint
    check when no endpoint was given and none of the selected profiles measures one."""
    if any(_is_gate_test(item, gate) and _case_of(item, gate) is None for gate in GATES):
        return True
    if _endpoint_check(item) and state.endpoint is None and not state.settings.endpoint_given:
        profiles = state.profiles_or_none()
        return bool(profiles) and not state.settings.adhoc_grid and not any(
            _profile_needs_endpoint(p, state) for p in profiles)
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that do not apply to the selected profiles are deselected (counted as such), not skipped."""
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.settings.gate_requested:
        return
    dropped = [item for item in items if _not_applicable(item, state)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Never green on nothing: selected tests that need an endpoint, with none given, are one usage
    error naming the option (under xdist, where workers collect, each such test is an ERROR instead)."""
    state = session.config.stash.get(STATE_KEY, None)
    if state is None or state.settings.endpoint_given or state.is_worker or session.config.option.collectonly:
        return
    needing = [item.nodeid for item in session.items if _needs_endpoint(item, state)]
    if needing:
        shown = ", ".join(needing[:3]) + (f" and {len(needing) - 3} more" if len(needing) > 3 else "")
        raise pytest.UsageError(
            f"pytest-deepseek: {len(needing)} selected test(s) measure an endpoint but no --endpoint was given "
            f"({shown}): pass --endpoint=URL (or --endpoint=sim://deepseek-v3 for the simulated engine), or "
            "deselect them with -m / -k")


# What must not have changed for an earlier result to stand in a continued run (versions may).
_CARRY_FINGERPRINT = ("endpoint_url", "endpoint_model", "simulated", "endpoint_replicas", "routing",
                      "warmup_endpoints", "profile", "model", "engine", "hardware", "nodes", "devices_per_node",
                      "thresholds_sha256", "tokenizer")


def _still_holds(entry: dict[str, Any], item: pytest.Function, state: RunState) -> bool:
    """An earlier result carries over only when it was decided (PASS or FAIL: an ERROR or an
    undecided check is measured again) under what this run would measure: the same endpoint,
    deployment, thresholds file and tokenizer, and for serving the same scenario once options apply."""
    if entry.get("verdict") not in ("pass", "fail"):
        return False
    case = next((c for gate in GATES if (c := _case_of(item, gate)) is not None), None)
    if case is None:
        return False
    now = state.fingerprint(case.profile)
    before = entry.get("fingerprint") or {}
    if any(now.get(key) != before.get(key) for key in _CARRY_FINGERPRINT):
        return False
    if entry.get("kind") == "serving":
        from .serving.gate import api_of
        from .serving.result import describe

        return bool(entry.get("scenario") == describe(case.scenario, api_of(case, state.settings)))
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """In a continued run (--deepseek-resume), a test whose decided result the run already holds, measured
    under the same conditions, is not run again: its result carries over, and it passes or fails as it did."""
    state = pyfuncitem.config.stash.get(STATE_KEY, None)
    entry = state.carried.get(pyfuncitem.nodeid) if state is not None else None
    if entry is None or not _still_holds(entry, pyfuncitem, state):
        return None
    from .fixtures import record_result
    from .report.entries import CollectedResult

    result = CollectedResult.from_json(entry).result
    record_result(pyfuncitem, result)
    pyfuncitem._deepseek_carried = True  # type: ignore[attr-defined]
    if not result.passed:
        pytest.fail(f"{result.failure_text()}\n  (carried over: this result was decided before the run was "
                    "continued)", pytrace=False)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    result = item.stash.get(RESULT_KEY, None)
    if result is not None and report.when in ("call", "setup") and not getattr(item, "_deepseek_reported", False):
        if report.when == "call" or report.failed:
            setattr(report, RESULT_ATTR, result.to_json())  # plain JSON survives xdist's report serialisation
            if getattr(item, "_deepseek_carried", False):
                setattr(report, CARRIED_ATTR, True)
            item._deepseek_reported = True  # type: ignore[attr-defined]
