"""Run state kept in `config.stash`: settings, the thresholds file, the endpoint, the results folder.

The controlling process decides the run id and opens the endpoint once; xdist workers receive both
through `workerinput`. Per-test results come back to the controller on the test reports and are
written there (summary.json, test_result.csv); request records are appended by the process that
measured them.

The thresholds file is read only when a gate needs it (a gate option was given or a gate test is
collected): another project's `thresholds.yaml` is none of our business.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import __version__
from .context import SessionDeadline
from .endpoint import Deployment, EndpointInfo
from .fingerprint import ServerFacts, client_facts, redacted_command_line, redacted_url
from .report.store import RunFolder
from .settings import EndpointPlan, ProfileUrls, Settings
from .tokenizers import EMBEDDED_NAME
from .thresholds import Profile, Thresholds, ThresholdsError, load_thresholds

if TYPE_CHECKING:
    from .regression.compare import RunEvidence


@dataclass
class RunState:
    """Everything the plugin keeps for one pytest session."""

    settings: Settings
    run_id: str
    started: str
    is_worker: bool = False
    endpoint: EndpointInfo | None = None  # the run's one endpoint, or the default of several (see endpoint_for)
    endpoints: dict[str, EndpointInfo] = field(default_factory=dict)  # profile -> the endpoint it is measured on
    # profile -> its endpoints when it has several (replicas, URLs only woken up); the default's apart
    deployments: dict[str, Deployment] = field(default_factory=dict)
    default_deployment: Deployment | None = None
    resumed: str | None = None  # when this session continued the run (--deepseek-resume)
    carried: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> summary entry, finished before
    started_at: float = field(default_factory=time.time)  # this session's start (workers: the controller's)
    command_line: tuple[str, ...] | None = None  # the arguments pytest was given (None: this process's sys.argv)
    _thresholds: Thresholds | None = field(default=None, repr=False)
    _thresholds_read: bool = field(default=False, repr=False)
    _folder: RunFolder | None = field(default=None, repr=False)
    _baseline: "RunEvidence | None" = field(default=None, repr=False)

    @property
    def folder(self) -> RunFolder:
        """The results folder (created on first use)."""
        if self._folder is None:
            self._folder = RunFolder(self.settings.results_dir, self.run_id)
            self._folder.create()  # also points `latest` here: a run killed in its first test is findable
        return self._folder

    @property
    def thresholds(self) -> Thresholds | None:
        """The thresholds file, read and validated on first use (None when there is none).

        Raises `ThresholdsError` for a malformed file, or an explicit one that does not exist.
        """
        if not self._thresholds_read:
            self._thresholds = self._read_thresholds()
            self._thresholds_read = True
        return self._thresholds

    def _read_thresholds(self) -> Thresholds | None:
        path = self.settings.thresholds
        if path is None:
            return None
        if not path.exists():
            if self.settings.thresholds_explicit:
                raise ThresholdsError(f"thresholds file {path} does not exist")
            return None
        return load_thresholds(path)

    def baseline(self) -> "RunEvidence | None":
        """The run --deepseek-baseline names, read on first use (None without the option).

        Raises `regression.BaselineError` when it names neither a run folder nor a saved baseline.
        """
        spec = self.settings.baseline
        if spec is None:
            return None
        if self._baseline is None:
            from .regression.baseline import resolve
            from .regression.load import load_run

            self._baseline = load_run(resolve(spec, self.settings.results_dir), label=spec)
        return self._baseline

    @property
    def session_deadline(self) -> SessionDeadline | None:
        """--deepseek-session-deadline, counted from this session's start (None without one)."""
        limit = self.settings.session_deadline
        return None if limit is None else SessionDeadline(limit, self.started_at)

    def selected_profiles(self) -> list[Profile]:
        """The profiles this run tests (see README: --deepseek-profile, endpoint match, or the only one)."""
        settings = self.settings
        thresholds = self.thresholds
        if thresholds is None:
            raise ThresholdsError(
                f"no thresholds file at {settings.thresholds}: pass --deepseek-thresholds=PATH (or, for serving, "
                "an ad-hoc grid with --deepseek-input-len/--deepseek-output-len)"
            )
        if settings.profile:
            return thresholds.select(settings.profile)
        if settings.endpoint_given:
            named = settings.endpoint_args().profiles_named(self.endpoint_keys())
            if named:
                return thresholds.select(named)
        return thresholds.select(())

    def profiles_or_none(self) -> list[Profile]:
        """The selected profiles, or [] when none can be chosen (for labels and defaults only)."""
        try:
            return self.selected_profiles()
        except ThresholdsError:
            return []

    def tokenizer_spec(self) -> str | None:
        """The tokenizer prompts are built with: --deepseek-tokenizer > the profiles' (when they agree) >
        None, the embedded DeepSeek V3/R1 tokenizer."""
        specs = {p.tokenizer for p in self.profiles_or_none() if p.tokenizer}
        return self.settings.layered("tokenizer", specs.pop() if len(specs) == 1 else None)

    def model_hint(self, profiles: Collection[str] = ()) -> str | None:
        """The model to ask an endpoint for: --deepseek-model > the profiles' (`profiles`, when given,
        else all) when they agree > None."""
        models = {p.model for p in self.profiles_or_none() if p.model and (not profiles or p.name in profiles)}
        return self.settings.layered("model", models.pop() if len(models) == 1 else None)

    def endpoint_keys(self) -> dict[str, str | None]:
        """Each profile of the thresholds file with its `endpoint:` key, or the first of its `endpoints:`
        (empty without a file)."""
        thresholds = self.thresholds
        if thresholds is None:
            return {}
        return {name: p.endpoint or next(iter(p.endpoints), None) for name, p in thresholds.profiles.items()}

    def endpoint_plan(self) -> EndpointPlan:
        """Which URLs each selected profile is measured against, and those it only wakes up
        (--endpoint, the endpoints file and --deepseek-warmup-endpoint, then the profiles' keys).

        Raises `SettingsError` for a bad combination of --endpoint values."""
        args = self.settings.endpoint_args()
        known = self.endpoint_keys()
        args.check(known)
        profiles = self.profiles_or_none()
        own = {p.name: ProfileUrls(p.endpoints, p.warmup_endpoints) for p in profiles}
        return args.plan(known, [p.name for p in profiles], own)

    def endpoint_for(self, profile: str) -> EndpointInfo | None:
        """The endpoint `profile` is measured against (the run's one endpoint when it has no own)."""
        return self.endpoints.get(profile, self.endpoint)

    def deployment_for(self, profile: str) -> Deployment | None:
        """`profile`'s endpoints when it has more than one (None: its one endpoint is all there is)."""
        return self.deployments.get(profile) if profile in self.endpoints else self.default_deployment

    def distinct_endpoints(self) -> list[EndpointInfo]:
        """Each opened endpoint once, the default first, then each profile's (replicas and those only
        woken up included)."""
        opened = [self.endpoint] if self.endpoint is not None else []
        opened += list(self.default_deployment.endpoints) if self.default_deployment is not None else []
        for name, info in self.endpoints.items():
            deployment = self.deployments.get(name)
            opened += list(deployment.endpoints) if deployment is not None else [info]
        distinct: dict[str, EndpointInfo] = {}
        for info in opened:
            distinct.setdefault(info.url, info)
        return list(distinct.values())

    def fingerprint(self, profile: Profile) -> dict[str, Any]:
        """What a result was measured with, so runs compared across time and hardware say what
        changed: plugin and Python versions, the endpoint and its model, what its server says about
        itself (version, model root, headers naming the software), the deployment the profile
        describes, the thresholds file's content and the tokenizer. Gates add their own parts."""
        endpoint = self.endpoint_for(profile.name)
        return {
            "plugin_version": __version__,
            "python": platform.python_version(),
            **_endpoint_fields(endpoint),
            "simulated": bool(endpoint and endpoint.simulated),
            **self._deployment_fingerprint(profile),
            "profile": profile.name,
            "model": profile.model,
            "engine": profile.engine,
            "hardware": profile.hardware,
            "nodes": self.settings.layered("nodes", profile.nodes),
            "devices_per_node": self.settings.layered("devices_per_node", profile.devices_per_node),
            "thresholds_sha256": self.thresholds_sha256(),
            "tokenizer": self.tokenizer_spec() or EMBEDDED_NAME,
        }

    def _deployment_fingerprint(self, profile: Profile) -> dict[str, Any]:
        """For a profile measured on several URLs, their redacted URLs (`endpoint_replicas`) and the
        routing over them; for one that wakes other URLs up, those (`warmup_endpoints`). Nothing for a
        profile of one endpoint, so its fingerprint reads as it always did."""
        deployment = self.deployment_for(profile.name)
        if deployment is None:
            return {}
        out: dict[str, Any] = {}
        if len(deployment.replicas) > 1:
            from .serving.gate import routing_of  # only for a run that routes: the gate's imports are not light

            out["endpoint_replicas"] = [redacted_url(info.url) for info in deployment.replicas]
            out["routing"] = routing_of(profile, self.settings)
        if deployment.warmup:
            out["warmup_endpoints"] = [redacted_url(info.url) for info in deployment.warmup]
        return out

    def single_endpoint(self) -> EndpointInfo | None:
        """The run's endpoint when it opened exactly one (None with none or several)."""
        opened = self.distinct_endpoints()
        return opened[0] if len(opened) == 1 else None

    def thresholds_sha256(self) -> str | None:
        """The thresholds file's content hash (None without a file)."""
        path = self.settings.thresholds
        if path is None or not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def session_fingerprint(self) -> dict[str, Any]:
        """The run's part of the fingerprint (summary.json `run.fingerprint`): plugin, Python and key
        dependency versions, the client's host name, the endpoint and what its server says about
        itself, the thresholds file's content and the tokenizer. With several endpoints, `servers`
        holds each one's facts by URL."""
        opened = self.distinct_endpoints()
        servers = {redacted_url(info.url): {"model": info.model, **info.server.fingerprint()} for info in opened}
        return {
            "plugin_version": __version__,
            "python": platform.python_version(),
            **client_facts(),
            **_endpoint_fields(self.single_endpoint()),
            "simulated": any(info.simulated for info in opened),
            **({"servers": servers} if len(servers) > 1 else {}),
            "thresholds_sha256": self.thresholds_sha256(),
            "tokenizer": self.tokenizer_spec() or EMBEDDED_NAME,
        }

    def command_line_redacted(self) -> list[str]:
        """The arguments pytest was given, secrets removed. Recorded beside the fingerprint rather than
        in it: what they set is compared through its own fields (overrides, endpoint, profiles), while
        the arguments themselves differ in paths from run to run."""
        args = self.command_line if self.command_line is not None else tuple(sys.argv[1:])
        return redacted_command_line(args, [self.settings.api_key])

    def run_header(self) -> dict[str, Any]:
        """The `run` part of summary.json."""
        profiles = [p.name for p in self.profiles_or_none()] or list(self.settings.profile)
        opened = self.distinct_endpoints()
        endpoint = self.single_endpoint()
        return {
            "id": self.run_id,
            "started": self.started,
            "plugin_version": __version__,
            "endpoint": redacted_url(endpoint.base_url) if endpoint else None,
            "endpoint_url": redacted_url(endpoint.url) if endpoint else None,
            "model": endpoint.model if endpoint else self.settings.model,
            "simulated": any(info.simulated for info in opened),
            "endpoints": {name: {"url": redacted_url(info.url), "base_url": redacted_url(info.base_url),
                                 "model": info.model, "simulated": info.simulated, **self._urls_of(name)}
                          for name, info in self.endpoints.items()},
            "tls_verify": self.settings.tls.verify,
            "profiles": profiles,
            "thresholds": str(self.settings.thresholds) if self._thresholds is not None else None,
            "tokenizer": self.tokenizer_spec() or EMBEDDED_NAME,
            "overrides": self.settings.overrides(),
            "results_dir": str(self.settings.results_dir / self.run_id),
            "command_line": self.command_line_redacted(),
            "fingerprint": self.session_fingerprint(),
            **({"resumed": self.resumed} if self.resumed else {}),
        }


    def _urls_of(self, profile: str) -> dict[str, list[str]]:
        """summary.json's `run.endpoints` extras of a profile with several URLs: its `replicas` and the
        URLs it only wakes up (`warmup_endpoints`), redacted."""
        deployment = self.deployments.get(profile)
        if deployment is None:
            return {}
        out = {"replicas": [redacted_url(info.url) for info in deployment.replicas]} if len(deployment.replicas) > 1 else {}
        if deployment.warmup:
            out["warmup_endpoints"] = [redacted_url(info.url) for info in deployment.warmup]
        return out


def now_iso() -> str:
    """Local time with offset, seconds precision."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _endpoint_fields(endpoint: EndpointInfo | None) -> dict[str, Any]:
    """An endpoint's part of a fingerprint: its URL (redacted), model and what its server says about itself."""
    return {
        "endpoint_url": redacted_url(endpoint.url) if endpoint else None,
        "endpoint_model": endpoint.model if endpoint else None,
        **(endpoint.server if endpoint else ServerFacts()).fingerprint(),
    }
