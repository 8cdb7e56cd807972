"""Fixtures the plugin offers: endpoint, tokenizer, thresholds, results folder, and per gate a case
fixture (parametrized by the plugin) and a run fixture (`<kind>_run(case) -> GateResult`)."""

from __future__ import annotations

import functools
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
def deepseek_endpoint(pytestconfig: pytest.Config) -> "EndpointInfo":
    """The checked endpoint (a started simulator for sim:// URLs). Without one the test is an ERROR:
    a gate never passes, nor skips, what it could not measure."""
    endpoint = run_state(pytestconfig).endpoint
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


def _progress_writer(config: pytest.Config) -> ProgressFn:
    capture = config.pluginmanager.getplugin("capturemanager")
    terminal = config.pluginmanager.getplugin("terminalreporter")

    def emit(line: str) -> None:
        if terminal is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                terminal.write_line(line)
        else:
            terminal.write_line(line)

    return emit


def gate_context(request: pytest.FixtureRequest, fingerprint: Mapping[str, Any] | None = None) -> GateContext:
    """What a gate needs from this session to run the requesting test's case (`fingerprint`: the
    session's part of the result's fingerprint)."""
    state = run_state(request.config)
    thresholds = state.settings.thresholds
    return GateContext(
        settings=state.settings, folder=state.folder, endpoint=state.endpoint, nodeid=request.node.nodeid,
        tokenizer=_tokenizer_loader(state), thresholds_dir=thresholds.parent if thresholds is not None else None,
        progress=_progress_writer(request.config), fingerprint=dict(fingerprint or {}),
        session_deadline=state.session_deadline,
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
            ctx = gate_context(request, session_part)
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
    test of the baseline (an ERROR stays as it is: nothing was measured to compare)."""
    state = run_state(request.config)
    baseline = state.baseline()
    if baseline is None or result.verdict == "error":
        return result
    from .regression.against import against_baseline  # numpy and the gates' statistics: not at plugin import
    from .regression.spec import RegressionSpec

    scenario_allows = getattr(getattr(case, "scenario", None), "allow_inconclusive", None)
    return against_baseline(result, request.node.nodeid, state.folder.path, baseline,
                            RegressionSpec.of(case.profile.regression),
                            allow_inconclusive=state.settings.layered("allow_inconclusive", scenario_allows))


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
