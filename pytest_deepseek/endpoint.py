"""The endpoint under test: start the simulator for `sim://` URLs, check reachability once, pick the model,
and read what the server says about itself (`fingerprint.ServerFacts`).

Everything here happens once per session, in the controlling process, so that an unreachable
endpoint or an unknown model is one clear error at session start rather than a failure per test.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fingerprint import ServerFacts, model_entry_facts, redacted_url, server_headers
from .tls import SYSTEM, TlsPolicy

if TYPE_CHECKING:
    from .credentials import KeyLike
    from .serving.endpoint_api import ModelsListing


PROBE_TIMEOUT_S = 2.0  # for each question about the server itself (its version): an answer or nothing, quickly


class EndpointSetupError(Exception):
    """The endpoint cannot be used; the message says why and what is available."""


@dataclass(frozen=True)
class EndpointInfo:
    """A checked endpoint, shareable with xdist workers as plain JSON."""

    url: str  # as the user gave it (sim://... or http://...)
    base_url: str  # http://host:port/v1
    model: str
    models: tuple[str, ...]
    simulated: bool
    truth_path: str | None = None  # the simulator's ground-truth log
    has_tokenize: bool = False
    ca_bundle: str | None = None  # how it was verified (TlsPolicy), for every later client
    tls_verify: bool = True
    server: ServerFacts = field(default_factory=ServerFacts)  # what the server said about itself

    def __repr__(self) -> str:
        """The fields, with credentials in the URLs masked (a traceback's locals show this)."""
        shown = {"url": redacted_url(self.url), "base_url": redacted_url(self.base_url)}
        items = ", ".join(f"{f.name}={shown.get(f.name, getattr(self, f.name))!r}" for f in fields(self))
        return f"{type(self).__name__}({items})"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for `workerinput`."""
        data = asdict(self)
        data["models"] = list(self.models)
        data["server"] = self.server.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EndpointInfo":
        """Inverse of `to_json` (JSON written before `server` existed loads with no server facts)."""
        return cls(**{**data, "models": tuple(data["models"]), "server": ServerFacts.from_json(data.get("server"))})

    @property
    def tls(self) -> TlsPolicy:
        """The TLS policy this endpoint was checked with: every client of the run uses the same."""
        return TlsPolicy(ca_bundle=self.ca_bundle, verify=self.tls_verify)

    @property
    def lock_name(self) -> str:
        """A file name for the lock that keeps perf runs on this endpoint from overlapping."""
        return "perf-" + hashlib.sha1(self.base_url.encode()).hexdigest()[:12] + ".lock"


@dataclass(frozen=True)
class Deployment:
    """The checked endpoints one profile is measured through when it has more than one URL: its
    replicas (the client routes requests over them; the first is the profile's endpoint) and the
    URLs that are only woken up before measuring (the replicas behind a proxy that is measured)."""

    replicas: tuple[EndpointInfo, ...]
    warmup: tuple[EndpointInfo, ...] = ()

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]:
        """Every endpoint of the deployment: replicas, then those only woken up."""
        return self.replicas + self.warmup

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for `workerinput`."""
        return {"replicas": [info.to_json() for info in self.replicas],
                "warmup": [info.to_json() for info in self.warmup]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Deployment":
        """Inverse of `to_json`."""
        return cls(tuple(EndpointInfo.from_json(item) for item in data["replicas"]),
                   tuple(EndpointInfo.from_json(item) for item in data.get("warmup") or ()))


def normalise_base_url(url: str) -> str:
    """`http://h:8000` or `http://h:8000/v1/` → `http://h:8000/v1`."""
    url = url.rstrip("/")
    if url.endswith("/v1/completions") or url.endswith("/v1/chat/completions"):
        url = url[: url.index("/v1/") + 3]
    if not url.endswith("/v1"):
        url = url + "/v1"
    return url


def probe_endpoint(url: str, *, model: str | None, api_key: "KeyLike", simulated: bool = False,
                   truth_path: str | None = None, timeout_s: float = 10.0,
                   tls: TlsPolicy = SYSTEM) -> EndpointInfo:
    """List the endpoint's models, check that `model` (or a default) is served, and read what the
    server says about itself (a fact it does not give, or gives too slowly, is absent: never an error)."""
    from .serving.endpoint_api import EndpointError, ModelsListing, models_listing, tokenize

    base_url = normalise_base_url(url) if not url.startswith("sim://") else url
    shown = redacted_url(base_url)  # the URL as messages name it
    try:
        listing = models_listing(base_url, api_key, timeout_s, tls=tls)
    except EndpointError as exc:
        if model is None or "HTTP 5" not in str(exc):
            detail = str(exc).replace(base_url, shown)  # the failure names the URL it asked
            raise EndpointSetupError(f"endpoint {shown} is not usable: {detail}") from exc
        # a server whose model list is broken (HTTP 5xx) but that was told which model to use
        listing = ModelsListing((), ())
    models = listing.ids
    if not models:
        if model is None:
            raise EndpointSetupError(f"endpoint {shown} lists no models at /v1/models: name one with --deepseek-model")
        # Some servers (transformers serve started on a folder) list nothing; the endpoint suite's
        # first real request then says whether the named model is served.
        models = [model]
    if model is None:
        model = models[0]
    elif model not in models:
        raise EndpointSetupError(
            f"model {model!r} is not served by {shown}; available models: {', '.join(models)} "
            "(choose with --deepseek-model or the profile's model:)"
        )
    has_tokenize = False
    try:
        has_tokenize = tokenize(base_url, model, "hello", api_key, tls=tls) is not None
    except EndpointError:
        has_tokenize = False
    server = server_facts(base_url, listing, model, api_key=api_key, timeout_s=min(timeout_s, PROBE_TIMEOUT_S),
                          tls=tls)
    return EndpointInfo(url=url, base_url=base_url, model=model, models=tuple(models), simulated=simulated,
                        truth_path=truth_path, has_tokenize=has_tokenize, ca_bundle=tls.ca_bundle,
                        tls_verify=tls.verify, server=server)


def server_facts(base_url: str, listing: "ModelsListing", model: str, *, api_key: "KeyLike",
                 timeout_s: float = PROBE_TIMEOUT_S, tls: TlsPolicy = SYSTEM) -> ServerFacts:
    """What the server says about itself: `model`'s entry of its model list, the headers naming the
    server software, and its version where it serves one (see `fingerprint`)."""
    from .serving.endpoint_api import server_version

    found = server_version(base_url, api_key, timeout_s, tls=tls)
    version, route = found if found is not None else (None, None)
    return ServerFacts(version=version, version_route=route, headers=server_headers(listing.headers),
                       **model_entry_facts(listing.entries, model))


class SimHandle:
    """A simulator subprocess started for the session, stopped at the end."""

    def __init__(self, url: str, folder: Path) -> None:
        from .sim.launcher import start_sim

        folder.mkdir(parents=True, exist_ok=True)
        self.truth_path = folder / "sim-truth.jsonl"
        self.log_path = folder / "sim.log"
        try:
            self.running = start_sim(url, truth_path=self.truth_path, log_path=self.log_path)
        except Exception as exc:
            raise EndpointSetupError(f"cannot start the simulated engine {url}: {exc}") from exc

    @property
    def base_url(self) -> str:
        """Its http base URL."""
        return str(self.running.base_url)

    def stop(self) -> None:
        """Stop the subprocess (flushes its truth log)."""
        self.running.stop()


@contextlib.contextmanager
def open_endpoint(url: str, *, model: str | None, api_key: "KeyLike", workdir: Path,
                  tls: TlsPolicy = SYSTEM) -> Iterator[EndpointInfo]:
    """The one way to open an endpoint: start the simulator for a `sim://` URL (its files under
    `workdir/sim`), probe the server, and yield the checked endpoint; a simulator started here is
    stopped when the block ends. Raises `EndpointSetupError` with what is wrong and what is available.
    HTTPS is verified as `tls` says; the endpoint keeps that policy for every later client.
    """
    if not url.startswith("sim://"):
        yield probe_endpoint(url, model=model, api_key=api_key, tls=tls)
        return
    sim = SimHandle(url, workdir / "sim")
    try:
        info = probe_endpoint(sim.base_url, model=model, api_key=api_key, simulated=True,
                              truth_path=str(sim.truth_path), tls=tls)
        yield replace(info, url=url)
    finally:
        sim.stop()
