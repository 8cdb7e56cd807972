"""The pytest11 entry point of pytest-deepseek: options, markers, header, parametrization, summary.

Everything with substance lives elsewhere: settings resolution (`settings`), the thresholds file
(`thresholds`), run state (`session`), fixtures (`fixtures`), result collection and tables
(`report`). Under xdist the controller checks the endpoint and owns the results files; workers get
the run id and the checked endpoint through `workerinput` and send results back on their reports.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .endpoint import EndpointInfo, EndpointSetupError, SimHandle, probe_endpoint
from .fixtures import (  # noqa: F401  (fixtures are found by name in this module)
    accuracy_case,
    accuracy_run,
    deepseek_api_key,
    deepseek_endpoint,
    deepseek_profiles,
    deepseek_results,
    deepseek_thresholds,
    serving_case,
    serving_run,
    tokenizer,
    training_case,
    training_run,
)
from .report.collect import RESULT_ATTR, RESULT_KEY, ResultCollector
from .report.store import new_run_id
from .session import RunState, now_iso, serving_cases
from .settings import OPTIONS, SettingsError, resolve
from .thresholds import ThresholdsError

STATE_KEY = pytest.StashKey[RunState]()
COLLECTOR_KEY = pytest.StashKey[ResultCollector]()

MARKERS = (
    "deepseek_serving: a serving measurement against the endpoint (never run concurrently with another)",
    "deepseek_training: a training-log gate",
    "deepseek_accuracy: an accuracy gate",
    "real_engine: needs a real inference server started by the test (slow; deselect with -m 'not real_engine')",
    "eval_backend: runs a real evaluation backend (evalscope, lm-eval, OpenCompass)",
)


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


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    try:
        settings = resolve(
            lambda name: config.getoption(f"deepseek_{name}"),
            lambda name: config.getini(name),
            rootdir=Path(config.rootpath),
            invocation_dir=Path(config.invocation_params.dir),
        )
    except SettingsError as exc:
        raise pytest.UsageError(f"pytest-deepseek: {exc}") from exc
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "deepseek_run_id" in workerinput:
        state = RunState(settings=settings, run_id=workerinput["deepseek_run_id"],
                         started=workerinput["deepseek_started"], is_worker=True)
        if workerinput.get("deepseek_endpoint"):
            state.endpoint = EndpointInfo.from_json(workerinput["deepseek_endpoint"])
    else:
        state = RunState(settings=settings, run_id=new_run_id(), started=now_iso())
    try:
        state.load_thresholds()
        if settings.profile:
            state.selected_profiles()  # an unknown --deepseek-profile is one usage error, before collection
        if len(settings.concurrency) > 1 or len(settings.request_rate) > 1:
            if not settings.adhoc_grid:
                raise ThresholdsError("several --deepseek-concurrency/--deepseek-request-rate values make a grid: give --deepseek-input-len "
                                      "and --deepseek-output-len too, or one value to override the profile's scenarios")
    except ThresholdsError as exc:
        raise pytest.UsageError(f"pytest-deepseek: {exc}") from exc
    config.stash[STATE_KEY] = state
    if not state.is_worker:
        collector = ResultCollector(state)
        config.stash[COLLECTOR_KEY] = collector
        config.pluginmanager.register(collector, "deepseek-collector")
        _setup_endpoint(config, state)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "deepseek-xdist")


def _setup_endpoint(config: pytest.Config, state: RunState) -> None:
    """Start the simulator (sim://) and probe the endpoint once; a failure is one usage error."""
    settings = state.settings
    if not settings.endpoint:
        return
    if len(settings.endpoint) > 1:
        raise pytest.UsageError("pytest-deepseek: one --endpoint per run is supported for now")
    url = settings.endpoint[0]
    model = settings.model
    if model is None:
        try:
            profiles = state.selected_profiles()
        except ThresholdsError:
            profiles = []
        models = {p.model for p in profiles if p.model}
        model = models.pop() if len(models) == 1 else None
    try:
        if url.startswith("sim://"):
            sim = SimHandle(url, state.folder.path / "sim")
            state.sim = sim
            config.add_cleanup(sim.stop)
            state.endpoint = probe_endpoint(sim.base_url, model=model, api_key=settings.api_key, simulated=True,
                                            truth_path=str(sim.truth_path))
            state.endpoint = EndpointInfo(**{**state.endpoint.to_json(), "url": url,
                                             "models": tuple(state.endpoint.models)})
        else:
            state.endpoint = probe_endpoint(url, model=model, api_key=settings.api_key)
    except EndpointSetupError as exc:
        raise pytest.UsageError(f"pytest-deepseek: {exc}") from exc


class _XdistHooks:
    """Registered only when xdist is installed: hands run state to workers."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["deepseek_run_id"] = self.state.run_id
        node.workerinput["deepseek_started"] = self.state.started
        if self.state.endpoint is not None:
            node.workerinput["deepseek_endpoint"] = self.state.endpoint.to_json()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or (state.endpoint is None and not state.settings.profile):
        return None
    endpoint = state.endpoint
    try:
        profiles = ", ".join(p.name for p in state.selected_profiles()) or "-"
    except ThresholdsError:
        profiles = "(to be chosen: --deepseek-profile)"
    lines = []
    if endpoint is not None:
        label = " [SIMULATED: not a release verdict]" if endpoint.simulated else ""
        lines.append(f"deepseek: endpoint {endpoint.url} -> {endpoint.base_url}, model {endpoint.model}{label}")
    lines.append(
        f"deepseek: profile {profiles}; tokenizer {state.settings.tokenizer or 'embedded DeepSeek V3/R1'}; "
        f"results {state.settings.results_dir / state.run_id}"
    )
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    from .fixtures import accuracy_cases, training_cases

    try:
        if "serving_case" in metafunc.fixturenames:
            cases = serving_cases(state)
            params = [pytest.param(c, marks=pytest.mark.deepseek_serving) for c in cases]
            metafunc.parametrize("serving_case", params, ids=[c.id for c in cases], indirect=True)
        if "training_case" in metafunc.fixturenames:
            tcases = training_cases(state)
            tparams = [pytest.param(c, marks=pytest.mark.deepseek_training) for c in tcases]
            metafunc.parametrize("training_case", tparams, ids=[c.id for c in tcases], indirect=True)
        if "accuracy_case" in metafunc.fixturenames:
            acases = accuracy_cases(state)
            aparams = [pytest.param(c, marks=pytest.mark.deepseek_accuracy) for c in acases]
            metafunc.parametrize("accuracy_case", aparams, ids=[c.id for c in acases], indirect=True)
    except ThresholdsError as exc:
        pytest.fail(f"pytest-deepseek: {exc}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    result = item.stash.get(RESULT_KEY, None)
    if result is not None and report.when in ("call", "setup") and not getattr(item, "_deepseek_reported", False):
        if report.when == "call" or report.failed:
            setattr(report, RESULT_ATTR, result)
            item._deepseek_reported = True  # type: ignore[attr-defined]
