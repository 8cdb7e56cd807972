"""Small synchronous calls made once at session start: models, tokenize, health, Prometheus metrics,
the server's version.

Base URL convention: the OpenAI base, ending with `/v1` (`http://127.0.0.1:8000/v1`). Endpoints
that live at the server root (`/tokenize`, `/health`, `/metrics`) are reached by dropping `/v1`.
HTTPS is verified as `tls` says (default: the system's CAs). Error messages never hold the API
key: a server that echoes the Authorization header in its error body is redacted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..credentials import KeyLike, bearer_headers, redact
from ..tls import SYSTEM, TlsPolicy


class EndpointError(Exception):
    """The endpoint could not be reached or answered with an HTTP error."""


def normalize_base_url(base_url: str) -> str:
    """`http://h:8000`, `http://h:8000/v1/` or `.../v1/chat/completions` -> `http://h:8000/v1`."""
    url = base_url.strip().rstrip("/")
    for endpoint in ("/v1/completions", "/v1/chat/completions"):
        if url.endswith(endpoint):
            url = url[: -len(endpoint) + len("/v1")]
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def server_root(base_url: str) -> str:
    """The server root: the normalised base URL without its `/v1`."""
    return normalize_base_url(base_url)[: -len("/v1")]


def _request(method: str, url: str, *, api_key: KeyLike, timeout: float, tls: TlsPolicy | None,
             **kwargs: Any) -> httpx.Response:
    """One request; transport failures become `EndpointError` naming the URL (never the key)."""
    try:
        with httpx.Client(timeout=timeout, trust_env=False, verify=(tls or SYSTEM).ssl_context()) as client:
            return client.request(method, url, headers=bearer_headers(api_key), **kwargs)
    except httpx.TimeoutException as exc:
        raise EndpointError(f"{method} {url}: timed out after {timeout:g} s ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        detail = redact(f"{type(exc).__name__}: {exc}", [api_key])
        raise EndpointError(f"{method} {url}: unreachable ({detail})") from None


def _body_head(response: httpx.Response, api_key: KeyLike) -> str:
    """The start of a response body for an error message, with the key (if echoed) redacted."""
    return redact(response.text[:2000], [api_key])[:300].strip()


def _check(response: httpx.Response, api_key: KeyLike) -> None:
    if response.status_code != 200:
        raise EndpointError(f"{response.request.method} {response.request.url}: HTTP {response.status_code}: "
                            f"{_body_head(response, api_key)}")


@dataclass(frozen=True)
class ModelsListing:
    """The answer of `GET /v1/models`: its entries (`data`) and the response's headers."""

    entries: tuple[Mapping[str, Any], ...]
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value), as received

    @property
    def ids(self) -> list[str]:
        """The ids of the models served."""
        return [str(entry["id"]) for entry in self.entries]


def models_listing(base_url: str, api_key: KeyLike = None, timeout: float = 10.0, *,
                   tls: TlsPolicy | None = None) -> ModelsListing:
    """The models served and the headers they came with (`GET /v1/models`)."""
    url = normalize_base_url(base_url) + "/models"
    response = _request("GET", url, api_key=api_key, timeout=timeout, tls=tls)
    _check(response, api_key)
    try:
        entries = tuple(response.json()["data"])
        if not all(isinstance(entry, Mapping) and "id" in entry for entry in entries):
            raise TypeError("an entry without an id")
    except (ValueError, KeyError, TypeError) as exc:
        raise EndpointError(f"GET {url}: unexpected answer ({exc}): {_body_head(response, api_key)}") from None
    return ModelsListing(entries, tuple((name.lower(), value) for name, value in response.headers.items()))


def list_models(base_url: str, api_key: KeyLike = None, timeout: float = 10.0, *,
                tls: TlsPolicy | None = None) -> list[str]:
    """Ids of the models served (`GET /v1/models`)."""
    return models_listing(base_url, api_key, timeout, tls=tls).ids


def server_version(base_url: str, api_key: KeyLike = None, timeout: float = 2.0, *,
                   tls: TlsPolicy | None = None) -> tuple[str, str] | None:
    """(version, route) from the first of `fingerprint.VERSION_ROUTES` that names one, None when
    none does. Never raises: a server without such a route, or slow to answer, simply has no version."""
    from ..fingerprint import VERSION_ROUTES, version_of

    root = server_root(base_url)
    for route in VERSION_ROUTES:
        try:
            response = _request("GET", root + route, api_key=api_key, timeout=timeout, tls=tls)
        except EndpointError:
            return None  # unreachable or slow: the next route would be too
        try:
            version = version_of(response.json()) if response.status_code == 200 else None
        except ValueError:
            version = None
        if version is not None:
            return version, route
    return None


def tokenize(
    base_url: str,
    model: str,
    text_or_messages: str | list[dict[str, str]] | tuple[dict[str, str], ...],
    api_key: KeyLike = None,
    timeout: float = 10.0,
    *,
    tls: TlsPolicy | None = None,
) -> int | None:
    """Prompt length in tokens by the server's own tokenizer (vLLM `POST /tokenize`).

    A string is tokenized as a completions prompt; messages through the chat template with the
    generation prompt, as the chat endpoint does. Returns None when the server has no such endpoint.
    """
    url = server_root(base_url) + "/tokenize"
    body: dict[str, Any] = {"model": model}
    if isinstance(text_or_messages, str):
        body["prompt"] = text_or_messages
    else:
        body["messages"] = list(text_or_messages)
        body["add_generation_prompt"] = True
    response = _request("POST", url, api_key=api_key, timeout=timeout, tls=tls, json=body)
    if response.status_code in (404, 405, 501):
        return None
    _check(response, api_key)
    try:
        answer = response.json()
        count = answer.get("count")
        return int(count) if count is not None else len(answer["tokens"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EndpointError(f"POST {url}: unexpected answer ({exc}): {_body_head(response, api_key)}") from None


def health(base_url: str, api_key: KeyLike = None, timeout: float = 5.0, *, tls: TlsPolicy | None = None) -> bool:
    """True when `GET /health` (or, lacking it, `GET /v1/models`) answers 200. Never raises.

    A healthy answer does not prove requests will succeed: send one real request before measuring.
    """
    try:
        response = _request("GET", server_root(base_url) + "/health", api_key=api_key, timeout=timeout, tls=tls)
        if response.status_code == 404:
            response = _request("GET", normalize_base_url(base_url) + "/models", api_key=api_key, timeout=timeout,
                                tls=tls)
    except EndpointError:
        return False
    return response.status_code == 200


def prometheus_counters(base_url: str, api_key: KeyLike = None, timeout: float = 10.0, *,
                        tls: TlsPolicy | None = None) -> dict[str, float]:
    """Samples of `GET /metrics` as `name{labels}` -> value, plus each bare `name` -> sum of its series."""
    url = server_root(base_url) + "/metrics"
    response = _request("GET", url, api_key=api_key, timeout=timeout, tls=tls)
    _check(response, api_key)
    return parse_prometheus_text(response.text)


def parse_prometheus_text(text: str) -> dict[str, float]:
    """Parse the Prometheus text exposition format (comments and unparsable lines are skipped)."""
    out: dict[str, float] = {}
    sums: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        if brace >= 0:
            close = line.rfind("}")  # label values may hold `}`; the value part never does
            if close < brace:
                continue
            name = line[:brace].strip()
            key = line[: close + 1]
            rest = line[close + 1 :].split()
        else:
            parts = line.split()
            name = key = parts[0]
            rest = parts[1:]
        if not rest or not name:
            continue
        try:
            value = float(rest[0])
        except ValueError:
            continue
        out[key] = value
        if brace >= 0:
            sums[name] = sums.get(name, 0.0) + (0.0 if math.isnan(value) else value)
    for name, total in sums.items():
        out.setdefault(name, total)
    return out
