"""Fixtures the plugin offers: endpoint, tokenizer, thresholds, results folder, and per gate a case
fixture (parametrized by the plugin) and a run fixture (`<kind>_run(case) -> GateResult`)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .context import GateContext, ProgressFn
from .gates import GATES, Gate
from .report.collect import RESULT_KEY
from .report.entries import with_session_fingerprint
from .session import RunState
from .thresholds import Profile
from .tokenizers import TextTokenizer, TokenizerError, load_tokenizer
from .verdict import GateResult

if TYPE_CHECKING:
    from .credentials import ApiKey
    from .endpoint import EndpointInfo
    from .report.store import RunFolder

NO_ENDPOINT = "no endpoint: pass --endpoint=URL (or --endpoint=sim://deepseek-v3 for the simulated engine)"


def run_state(config: pytest.Config) -> RunState:
    """The plugin's state of this session."""
    from .plugin import STATE_KEY

    return config.stash[STATE_KEY]


@pytest.fixture(scope="session")
def deepseek_thresholds(pytestconfig: pytest.Config) -> Any:
    """The loaded thresholds file (None when there is none)."""
    return run_state(pytestconfig).thresholds


@pytest.fixture(scope="session")
def deepseek_profiles(pytestconfig: pytest.Config) -> list[Profile]:
    """The profiles selected for this run."""
    return run_state(pytestconfig).selected_profiles()


@pytest.fixture(scope="session")
def deepseek_results(pytestconfig: pytest.Config) -> "RunFolder":
    """This run's results folder."""
    return run_state(pytestconfig).folder


@pytest.fixture(scope="session")
def deepseek_api_key(pytestconfig: pytest.Config) -> "ApiKey | None":
    """The API key in force (--deepseek-api-key, its file, $DEEPSEEK_API_KEY, $OPENAI_API_KEY): it prints
    as `***`; the endpoint helpers take it as it is, `.reveal()` gives the text."""
    return run_state(pytestconfig).settings.api_key


@pytest.fixture(scope="session")
def deepseek_endpoint(request: pytest.FixtureRequest) -> "EndpointInfo":
    """The checked endpoint (a started simulator for sim:// URLs); in a run of several endpoints the
    plugin parametrizes it with each one's URL. Without one the test is an ERROR: a gate never
    passes, nor skips, what it could not measure."""
    state = run_state(request.config)
    url = getattr(request, "param", None)
    endpoint = state.endpoint if url is None else next(
        (info for info in state.distinct_endpoints() if info.url == url), None)
    if endpoint is None:
        pytest.fail(NO_ENDPOINT, pytrace=False)
    return endpoint


@functools.lru_cache(maxsize=8)
def _load_tokenizer(spec: str | None, trust_remote_code: bool) -> TextTokenizer:
    return load_tokenizer(spec, trust_remote_code=trust_remote_code)


def _tokenizer_loader(state: RunState) -> Callable[[], TextTokenizer]:
    """Loads the run's tokenizer on first call (once per process); raises `TokenizerError`."""
    return lambda: _load_tokenizer(state.tokenizer_spec(), state.settings.trust_remote_code)


@pytest.fixture(scope="session")
def tokenizer(pytestconfig: pytest.Config) -> TextTokenizer:
    """The tokenizer prompts are built with (--deepseek-tokenizer, the profile's, or the embedded one)."""
    try:
        return _tokenizer_loader(run_state(pytestconfig))()
    except TokenizerError as exc:
        pytest.fail(f"pytest-deepseek: {exc}", pytrace=False)


def _progress_writer(config: pytest.Config) -> ProgressFn | None:
    """Where a gate's progress goes: a live display on a terminal, plain lines otherwise (a log),
    nowhere on an xdist worker (its output is never shown) or without a terminal reporter."""
    from .report.progress import LiveTerminal, ProgressOutput  # rich: only when a gate runs

    terminal = config.pluginmanager.getplugin("terminalreporter")
    if terminal is None or hasattr(config, "workerinput"):
        return None
    capture = config.pluginmanager.getplugin("capturemanager")

    def uncaptured() -> contextlib.AbstractContextManager[object]:
        return capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()

    def write_line(line: str) -> None:
        with uncaptured():
            terminal.write_line(line)

    writer = config.get_terminal_writer()
    with uncaptured():  # the real stdout and its width, not the capture's file
        on_tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
        width = writer.fullwidth
    if not (on_tty and writer.hasmarkup and os.environ.get("TERM") != "dumb"):
        return ProgressOutput(write_line)
    return ProgressOutput(write_line, LiveTerminal(width, uncaptured, terminal.ensure_newline))


def gate_context(request: pytest.FixtureRequest, fingerprint: Mapping[str, Any] | None = None,
                 profile: str | None = None) -> GateContext:
    """What a gate needs from this session to run the requesting test's case (`fingerprint`: the
    session's part of the result's fingerprint; `profile`: the case's, whose endpoint it measures)."""
    state = run_state(request.config)
    thresholds = state.settings.thresholds
    endpoint = state.endpoint if profile is None else state.endpoint_for(profile)
    deployment = state.default_deployment if profile is None else state.deployment_for(profile)
    return GateContext(
        settings=state.settings, folder=state.folder, endpoint=endpoint, nodeid=request.node.nodeid,
        tokenizer=_tokenizer_loader(state), thresholds_dir=thresholds.parent if thresholds is not None else None,
        progress=_progress_writer(request.config), fingerprint=dict(fingerprint or {}),
        session_deadline=state.session_deadline, deployment=deployment,
    )


def record_result(item: pytest.Item, result: GateResult) -> None:
    """Attach a result to its test: summary.json and the tables (via the report), JUnit properties."""
    item.stash[RESULT_KEY] = result
    item.user_properties.extend(result.junit_properties())


def _case_fixture(gate: Gate) -> Any:
    @pytest.fixture(name=gate.case_fixture)
    def case(request: pytest.FixtureRequest) -> Any:
        return request.param

    case.__doc__ = f"The {gate.kind} case of this test (parametrized by the plugin from the thresholds file)."
    return case


def _run_fixture(gate: Gate) -> Any:
    @pytest.fixture(name=gate.run_fixture)
    def run(request: pytest.FixtureRequest) -> Callable[[Any], GateResult]:
        module = gate.module()

        def run_case(case: Any) -> GateResult:
            session_part = run_state(request.config).fingerprint(case.profile)
            ctx = gate_context(request, session_part, case.profile.name)
            deadline = ctx.session_deadline
            if deadline is not None and deadline.passed:
                result = not_run(gate, case, ctx, deadline.not_run())
            else:
                result = module.run(case, ctx)
            result = with_session_fingerprint(result, session_part)
            result = against_the_baseline(result, case, request)
            record_result(request.node, result)
            return result

        return run_case

    run.__doc__ = f"A function that runs a {gate.kind} case, records its result and returns it."
    return run


def against_the_baseline(result: GateResult, case: Any, request: pytest.FixtureRequest) -> GateResult:
    """With --deepseek-baseline, the result with its `regression.<metric>` checks against the same
    test of the baseline (an ERROR stays as it is: nothing was measured to compare); the comparison
    goes to the run's regression.jsonl first, so that a rebuild of the run applies it again."""
    state = run_state(request.config)
    baseline = state.baseline()
    if baseline is None or result.verdict == "error":
        return result
    from .regression.against import compare_with_baseline  # numpy and the gates' statistics: not at plugin import
    from .regression.recorded import REGRESSION_FILE
    from .regression.spec import RegressionSpec
    from .report.journal import json_line

    scenario_allows = getattr(getattr(case, "scenario", None), "allow_inconclusive", None)
    comparison = compare_with_baseline(result, request.node.nodeid, state.folder.path, baseline,
                                       RegressionSpec.of(case.profile.regression),
                                       allow_inconclusive=state.settings.layered("allow_inconclusive", scenario_allows))
    state.folder.append_lines(state.folder.path / REGRESSION_FILE, [json_line(comparison.to_json())])
    return comparison.apply(result)


def not_run(gate: Gate, case: Any, ctx: GateContext, problem: str) -> GateResult:
    """The ERROR of a gate test that is not run (the session deadline passed): the gate's own
    `not_run` notes it where its results are rebuilt from; a gate without one leaves it to summary.json."""
    own = getattr(gate.module(), "not_run", None)
    if own is not None:
        result: GateResult = own(case, ctx, problem)
        return result
    case_id = str(case.id).split(":", 1)[-1]
    return GateResult.decide(gate.kind, case.profile.name, case_id, (), problems=[problem])


# `serving_case`, `serving_run`, `training_case`, ...: pytest finds fixtures by module attribute.
for _gate in GATES:
    globals()[_gate.case_fixture] = _case_fixture(_gate)
    globals()[_gate.run_fixture] = _run_fixture(_gate)


def require_pass(result: GateResult) -> None:
    """Fail the test (without the plugin's traceback) unless the result's verdict is PASS."""
    if not result.passed:
        pytest.fail(result.failure_text(), pytrace=False)
