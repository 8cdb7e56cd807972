"""Fixtures the plugin offers: endpoint, tokenizer, thresholds, results folder, and the run factories."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .report.collect import RESULT_KEY
from .session import RunState, ServingCase
from .thresholds import Profile
from .tokenizers import TextTokenizer, TokenizerError, load_tokenizer

if TYPE_CHECKING:
    from .endpoint import EndpointInfo
    from .report.store import RunFolder
    from .serving.runner import ServingOutcome


def _state(config: pytest.Config) -> RunState:
    from .plugin import STATE_KEY

    return config.stash[STATE_KEY]


@dataclass(frozen=True)
class TrainingCase:
    """One parametrized training test: a profile and one of its `training:` entries."""

    profile: Profile
    entry: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.profile.name}:{self.entry.get('name', 'training')}"


@dataclass(frozen=True)
class AccuracyCase:
    """One parametrized accuracy test: a profile and one dataset entry of its `accuracy:` section."""

    profile: Profile
    section: dict[str, Any]
    dataset: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.profile.name}:{self.dataset.get('name')}"


def training_cases(state: RunState) -> list[TrainingCase]:
    """The training tests of this run: every `training:` entry of the selected profiles."""
    return [TrainingCase(p, dict(entry)) for p in state.selected_profiles() for entry in p.training]


def accuracy_cases(state: RunState) -> list[AccuracyCase]:
    """The accuracy tests of this run: every dataset of the selected profiles' `accuracy:` sections."""
    cases = []
    for profile in state.selected_profiles():
        if profile.accuracy:
            for dataset in profile.accuracy.get("datasets", []):
                cases.append(AccuracyCase(profile, dict(profile.accuracy), dict(dataset)))
    return cases


@pytest.fixture(scope="session")
def deepseek_thresholds(pytestconfig: pytest.Config) -> Any:
    """The loaded thresholds file (None when there is none)."""
    return _state(pytestconfig).thresholds


@pytest.fixture(scope="session")
def deepseek_profiles(pytestconfig: pytest.Config) -> list[Profile]:
    """The profiles selected for this run."""
    return _state(pytestconfig).selected_profiles()


@pytest.fixture(scope="session")
def deepseek_results(pytestconfig: pytest.Config) -> "RunFolder":
    """This run's results folder."""
    return _state(pytestconfig).folder


@pytest.fixture(scope="session")
def deepseek_endpoint(pytestconfig: pytest.Config) -> "EndpointInfo":
    """The checked endpoint (started simulator for sim:// URLs); skips when no --endpoint was given."""
    endpoint = _state(pytestconfig).endpoint
    if endpoint is None:
        pytest.skip("no endpoint: pass --endpoint=URL (or sim://deepseek-v3 for the simulated engine)")
    return endpoint


@pytest.fixture(scope="session")
def tokenizer(pytestconfig: pytest.Config) -> TextTokenizer:
    """The tokenizer prompts are built with (--tokenizer, the profile's, or the embedded DeepSeek one)."""
    state = _state(pytestconfig)
    spec = state.settings.tokenizer
    if spec is None:
        from .thresholds import ThresholdsError

        try:
            specs = {p.tokenizer for p in state.selected_profiles() if p.tokenizer}
        except ThresholdsError:
            specs = set()
        spec = specs.pop() if len(specs) == 1 else None
    try:
        return load_tokenizer(spec, trust_remote_code=state.settings.trust_remote_code)
    except TokenizerError as exc:
        raise pytest.UsageError(f"pytest-deepseek: {exc}") from exc


@pytest.fixture
def serving_case(request: pytest.FixtureRequest) -> ServingCase:
    """The profile and scenario of this serving test (parametrized by the plugin)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def training_case(request: pytest.FixtureRequest) -> TrainingCase:
    """The profile and `training:` entry of this test (parametrized by the plugin)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def accuracy_case(request: pytest.FixtureRequest) -> AccuracyCase:
    """The profile and accuracy dataset entry of this test (parametrized by the plugin)."""
    return request.param  # type: ignore[no-any-return]


@contextlib.contextmanager
def perf_lock(state: RunState, endpoint: "EndpointInfo") -> Iterator[None]:
    """Serialise perf runs against one endpoint across processes (xdist workers included)."""
    root = state.settings.results_dir
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{endpoint.lock_name}", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _progress_writer(config: pytest.Config) -> Callable[[str], None]:
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


def record_result(item: pytest.Item, result: dict[str, Any]) -> None:
    """Attach a result to the test (summary.json, the table) and a few JUnit properties."""
    item.stash[RESULT_KEY] = result
    item.user_properties.append(("deepseek.verdict", result.get("verdict")))
    item.user_properties.append(("deepseek.simulated", bool(result.get("simulated"))))
    metrics = result.get("metrics") or {}
    for key in ("output_throughput_per_node", "input_throughput_per_node", "score"):
        if metrics.get(key) is not None:
            item.user_properties.append((f"deepseek.{key}", metrics[key]))
    for check in result.get("checks") or []:
        name = check.get("metric") or check.get("name")
        item.user_properties.append((f"deepseek.check.{name}", f"{check.get('verdict')}: {check.get('message')}"))


@pytest.fixture
def serving_run(request: pytest.FixtureRequest, tokenizer: TextTokenizer) -> Callable[[ServingCase], "ServingOutcome"]:
    """A function that measures a serving case against the endpoint and records the result."""
    from .serving.runner import ServingTarget, run_scenario

    state = _state(request.config)

    def run(case: ServingCase) -> "ServingOutcome":
        endpoint = state.endpoint
        if endpoint is None:
            pytest.skip("no endpoint: pass --endpoint=URL (or sim://deepseek-v3 for the simulated engine)")
        settings = state.settings
        api = settings.api or case.scenario.api or case.profile.api
        target = ServingTarget(
            base_url=endpoint.base_url,
            model=endpoint.model,
            api=api,  # type: ignore[arg-type]
            api_key=settings.api_key,
            simulated=endpoint.simulated,
            has_tokenize=endpoint.has_tokenize,
            nodes=settings.nodes or case.profile.nodes,
            devices_per_node=settings.devices_per_node or case.profile.devices_per_node,
            timeout_s=min(settings.request_timeout, case.scenario.timeout_s),
        )
        with perf_lock(state, endpoint):
            outcome = run_scenario(
                case.scenario, target, tokenizer=tokenizer, folder=state.folder,
                nodeid=request.node.nodeid, profile=case.profile.name, scenario_id=case.scenario.ident,
                progress=_progress_writer(request.config),
            )
        record_result(request.node, outcome.result)
        return outcome

    return run


def require_pass(outcome: Any) -> None:
    """Fail the test (without the plugin's traceback) unless the outcome's verdict is pass."""
    if outcome.verdict != "pass":
        pytest.fail(outcome.failure_text(), pytrace=False)
