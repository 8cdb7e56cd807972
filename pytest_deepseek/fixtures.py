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
    """One parametrized training test: a profile, one of its `training:` entries, and an aspect."""

    profile: Profile
    entry: dict[str, Any]
    aspect: str  # convergence | speed

    @property
    def id(self) -> str:
        return f"{self.profile.name}:{self.entry.get('name', 'training')}:{self.aspect}"


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
    """The training tests of this run: each `training:` entry of the selected profiles, per aspect."""
    from .training_gate import aspects_of

    return [TrainingCase(p, dict(entry), aspect) for p in state.selected_profiles() for entry in p.training
            for aspect in aspects_of(entry)]


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
def deepseek_api_key(pytestconfig: pytest.Config) -> str | None:
    """The API key in force (--deepseek-api-key, $DEEPSEEK_API_KEY, $OPENAI_API_KEY); never printed."""
    return _state(pytestconfig).settings.api_key


@pytest.fixture(scope="session")
def deepseek_endpoint(pytestconfig: pytest.Config) -> "EndpointInfo":
    """The checked endpoint (started simulator for sim:// URLs); skips when no --endpoint was given."""
    endpoint = _state(pytestconfig).endpoint
    if endpoint is None:
        pytest.skip("no endpoint: pass --endpoint=URL (or sim://deepseek-v3 for the simulated engine)")
    return endpoint


@pytest.fixture(scope="session")
def tokenizer(pytestconfig: pytest.Config) -> TextTokenizer:
    """The tokenizer prompts are built with (--deepseek-tokenizer, the profile's, or the embedded DeepSeek one)."""
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
    from .serving.runner import ServingTarget, run_scenario, setup_error_outcome
    from .serving.workload import WorkloadError

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
            timeout_s=settings.request_timeout if settings.request_timeout is not None else case.scenario.timeout_s,
        )
        try:
            with perf_lock(state, endpoint):
                outcome = run_scenario(
                    case.scenario, target, tokenizer=tokenizer, folder=state.folder,
                    nodeid=request.node.nodeid, profile=case.profile.name, scenario_id=case.scenario.ident,
                    progress=_progress_writer(request.config),
                )
        except WorkloadError as exc:
            outcome = setup_error_outcome(case, target, f"the workload could not be built: {exc}")
        record_result(request.node, outcome.result)
        return outcome

    return run


@dataclass
class TrainingOutcome:
    """A training test's result (summary.json entry) and verdict."""

    result: dict[str, Any]
    verdict: str

    def failure_text(self) -> str:
        from .training_gate import failure_text

        return failure_text(self.result)


@pytest.fixture
def training_run(request: pytest.FixtureRequest) -> Callable[[TrainingCase], TrainingOutcome]:
    """A function that evaluates a training case (once per entry and run) and records the result."""
    from . import training_gate

    state = _state(request.config)

    def run(case: TrainingCase) -> TrainingOutcome:
        settings = state.settings
        base_dir = settings.thresholds.parent if settings.thresholds is not None else None
        paths = training_gate.resolve_log_paths(case.entry, settings.training_log, base_dir)
        folder = state.folder

        def evaluate() -> training_gate.TrainingEvaluation:
            return training_gate.evaluate(
                case.entry, paths, follow=settings.follow, timeout_s=settings.follow_timeout,
                train_cmd=settings.train_cmd, stop_when_decided=settings.stop_when_decided,
                output_dir=folder.path / "training", progress=_progress_writer(request.config),
            )

        evaluation = training_gate.evaluate_once(folder, case.profile.name, case.entry, evaluate)
        checks, verdict = training_gate.split_aspect(evaluation, case.entry, case.aspect)
        result = {
            "kind": "training", "profile": case.profile.name, "entry": evaluation.name,
            "aspect": case.aspect, "scenario_id": f"{evaluation.name}:{case.aspect}",
            "example": bool(case.entry.get("example")), "simulated": False,
            "metrics": evaluation.metrics, "checks": checks, "verdict": verdict,
            "warnings": evaluation.warnings, "paths": evaluation.paths,
            "log": ", ".join(evaluation.paths),
        }
        record_result(request.node, result)
        return TrainingOutcome(result, verdict)

    return run


@dataclass
class AccuracyOutcome:
    """An accuracy test's result (summary.json entry) and verdict."""

    result: dict[str, Any]
    verdict: str

    def failure_text(self) -> str:
        from .accuracy_gate import failure_text

        return failure_text(self.result)


@pytest.fixture
def accuracy_run(request: pytest.FixtureRequest) -> Callable[[AccuracyCase], AccuracyOutcome]:
    """A function that judges one accuracy dataset (evaluating the profile once per run)."""
    from . import accuracy_gate

    state = _state(request.config)

    def run(case: AccuracyCase) -> AccuracyOutcome:
        settings = state.settings
        base_dir = settings.thresholds.parent if settings.thresholds is not None else None
        endpoint = state.endpoint
        folder = state.folder

        def evaluate() -> accuracy_gate.Evaluation:
            return accuracy_gate.evaluate_profile(
                case.section,
                results_override=settings.eval_results,
                backend_override=settings.eval_backend,
                endpoint=(endpoint.base_url, endpoint.model, endpoint.simulated) if endpoint else None,
                # The section's own endpoint may serve another model than the profile's serving one.
                model=settings.model or case.section.get("model"),
                api=settings.api or case.profile.api,
                api_key=settings.api_key,
                data_dir=settings.eval_data,
                opencompass_python=settings.opencompass_python,
                limit=settings.eval_limit,
                tokenizer_path=settings.tokenizer or case.profile.tokenizer,
                work_dir=folder.path / "accuracy" / case.profile.name,
                base_dir=base_dir,
            )

        def evaluate_locked() -> accuracy_gate.Evaluation:
            if endpoint is None or case.section.get("endpoint"):
                return evaluate()
            with perf_lock(state, endpoint):  # never while a throughput run measures the same endpoint
                return evaluate()

        evaluation = accuracy_gate.evaluate_once(folder, case.profile.name, evaluate_locked)
        judged = accuracy_gate.judge_dataset(case.dataset, evaluation, confidence=case.profile.confidence,
                                             base_dir=base_dir)
        result = {
            "kind": "accuracy", "profile": case.profile.name, "dataset": case.dataset["name"],
            "scenario_id": case.dataset["name"], "backend": evaluation.backend,
            "simulated": evaluation.simulated, "example": bool(case.section.get("example")),
            "results_dir": evaluation.results_dir, "log": evaluation.results_dir, **judged,
        }
        record_result(request.node, result)
        return AccuracyOutcome(result, str(judged["verdict"]))

    return run


def require_pass(outcome: Any) -> None:
    """Fail the test (without the plugin's traceback) unless the outcome's verdict is pass."""
    if outcome.verdict != "pass":
        pytest.fail(outcome.failure_text(), pytrace=False)
