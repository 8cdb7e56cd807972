"""Run state kept in `config.stash`: settings, the thresholds file, the endpoint, the results folder.

The controlling process decides the run id and checks the endpoint once; xdist workers receive both
through `workerinput`. Per-test results come back to the controller on the test reports and are
written there (summary.json, test_result.csv); request records are appended by the process that
measured them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from . import __version__
from .endpoint import EndpointInfo, SimHandle
from .report.store import RunFolder
from .settings import Settings
from .thresholds import Profile, Scenario, Thresholds, ThresholdsError, load_thresholds


@dataclass
class RunState:
    """Everything the plugin keeps for one pytest session."""

    settings: Settings
    run_id: str
    started: str
    is_worker: bool = False
    thresholds: Thresholds | None = None
    thresholds_error: str | None = None
    endpoint: EndpointInfo | None = None
    sim: SimHandle | None = None
    _folder: RunFolder | None = None

    @property
    def folder(self) -> RunFolder:
        """The results folder (created on first use)."""
        if self._folder is None:
            self._folder = RunFolder(self.settings.results_dir, self.run_id)
            self._folder.create()  # also points `latest` here: a run killed in its first test is findable
        return self._folder

    def load_thresholds(self) -> None:
        """Read the thresholds file if there is one; an explicit but missing file is an error."""
        path = self.settings.thresholds
        if path is None:
            return
        if not path.exists():
            if self.settings.thresholds_explicit:
                raise ThresholdsError(f"thresholds file {path} does not exist")
            return
        self.thresholds = load_thresholds(path)

    def selected_profiles(self) -> list[Profile]:
        """The profiles this run tests (see README: --deepseek-profile, endpoint match, or the only one)."""
        settings = self.settings
        if self.thresholds is None:
            raise ThresholdsError(
                f"no thresholds file at {settings.thresholds}: pass --deepseek-thresholds=PATH (or, for serving, an ad-hoc "
                "grid with --deepseek-input-len/--deepseek-output-len)"
            )
        if settings.profile:
            return self.thresholds.select(settings.profile)
        if settings.endpoint:
            matching = [p for p in self.thresholds.profiles.values() if p.endpoint in settings.endpoint]
            if matching:
                return matching
        return self.thresholds.select(())

    def run_header(self) -> dict[str, Any]:
        """The `run` part of summary.json."""
        profiles: list[str] = []
        try:
            profiles = [p.name for p in self.selected_profiles()]
        except ThresholdsError:
            profiles = list(self.settings.profile)
        endpoint = self.endpoint
        return {
            "id": self.run_id,
            "started": self.started,
            "plugin_version": __version__,
            "endpoint": endpoint.base_url if endpoint else None,
            "endpoint_url": endpoint.url if endpoint else None,
            "model": endpoint.model if endpoint else self.settings.model,
            "simulated": bool(endpoint and endpoint.simulated),
            "profiles": profiles,
            "thresholds": str(self.settings.thresholds) if self.thresholds else None,
            "tokenizer": self.settings.tokenizer or "embedded",
            "overrides": self.settings.overrides(),
            "results_dir": str(self.settings.results_dir / self.run_id),
        }


@dataclass(frozen=True)
class ServingCase:
    """One parametrized serving test: a profile and a scenario."""

    profile: Profile
    scenario: Scenario

    @property
    def id(self) -> str:
        """`profile:in2048-out1024-c1024`."""
        return f"{self.profile.name}:{self.scenario.ident}"


def adhoc_profile(settings: Settings) -> Profile:
    """A profile for runs without a thresholds file (figures are reported, nothing is gated)."""
    return Profile(name="adhoc", model=settings.model, api=settings.api or "completions")


def serving_cases(state: RunState) -> list[ServingCase]:
    """The serving tests of this run: the ad-hoc grid, or the scenarios of the selected profiles."""
    settings = state.settings
    if settings.adhoc_grid:
        # An ad-hoc grid needs no thresholds: without --deepseek-profile it runs under an "adhoc" profile
        # (or the profile whose endpoint: is the --endpoint), figures reported, nothing gated.
        try:
            profiles = state.selected_profiles()
        except ThresholdsError:
            if settings.profile:
                raise
            profiles = []
        base_profiles = profiles or [adhoc_profile(settings)]
        cases = []
        inputs = settings.input_len or (512,)
        outputs = settings.output_len or (128,)
        loads: list[dict[str, Any]] = (
            [{"request_rate": r} for r in settings.request_rate]
            or [{"concurrency": c} for c in settings.concurrency]
            or [{"concurrency": 1}]
        )
        for profile in base_profiles:
            for input_len in inputs:
                for output_len in outputs:
                    for load in loads:
                        scenario = Scenario(
                            input_len=input_len,
                            output_len=output_len,
                            num_prompts=settings.num_prompts or 50,
                            warmup=settings.warmup if settings.warmup is not None else 2,
                            dataset=settings.dataset or "random",
                            dataset_path=settings.dataset_path,
                            early_stop=settings.early_stop,
                            confidence=profile.confidence,
                            error_budget=profile.error_budget,
                            **load,
                        )
                        cases.append(ServingCase(profile, scenario))
        return cases
    cases = []
    for profile in state.selected_profiles():
        for scenario in profile.scenarios:
            cases.append(ServingCase(profile, apply_overrides(scenario, settings)))
    return cases


def apply_overrides(scenario: Scenario, settings: Settings) -> Scenario:
    """Command-line values replace the file's for ad-hoc runs (and are recorded in the results)."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if settings.num_prompts is not None:
        changes["num_prompts"] = settings.num_prompts
    if settings.warmup is not None:
        changes["warmup"] = settings.warmup
    if settings.dataset is not None:
        changes["dataset"] = settings.dataset
    if settings.dataset_path is not None:
        changes["dataset_path"] = settings.dataset_path
    if settings.early_stop:
        changes["early_stop"] = True
    if settings.allow_inconclusive:
        changes["allow_inconclusive"] = True
    if len(settings.concurrency) == 1 and scenario.batch_size is None:
        changes.update(concurrency=settings.concurrency[0], request_rate=None)
    if len(settings.request_rate) == 1 and scenario.batch_size is None:
        changes.update(request_rate=settings.request_rate[0], concurrency=None)
    return replace(scenario, **changes) if changes else scenario


def now_iso() -> str:
    """Local time with offset, seconds precision."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")
