"""What a run was measured with, beyond the thresholds: what the server says about itself, the
client machine and the plugin's key dependencies; and the command line without its secrets.

`ServerFacts` holds what the endpoint answered once, when it was probed (its `/v1/models` entry of
the served model, its version, the response headers that name the server software); the rest of
this module selects and redacts (pure), except `client_facts`, which reads this interpreter and host.

Where a server's version is read (each route tried once, with a short timeout; a failure is absent data):
- `GET /version`: vLLM answers `{"version": "..."}` (the simulator too);
- `GET /server_info`, then `GET /get_server_info` (SGLang: the newer name, then the older): only
  its `version` is kept, the rest holds the server's launch arguments (its own API key among them).
LMDeploy's api_server and others without such a route are known by their `server` header alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .credentials import MASK, KeyLike, redact

# Routes that may name the server's version, tried in this order (see the module docstring).
VERSION_ROUTES = ("/version", "/server_info", "/get_server_info")
# Response headers that name the server software (lower case); no other header is kept.
SERVER_HEADERS = ("server", "x-powered-by", "via", "x-served-by", "x-server", "x-engine")
# The fields of the `/v1/models` entry kept, as (entry field, `ServerFacts` field).
MODEL_FIELDS = (("id", "model_id"), ("root", "model_root"), ("owned_by", "model_owned_by"),
                ("max_model_len", "max_model_len"), ("created", "model_created"))
# The fields of a result's fingerprint that become JUnit properties `deepseek.fingerprint.<name>`.
JUNIT_FIELDS = ("server_version", "model_root", "engine", "hardware", "prompt_set_hash")
# The plugin's key dependencies, whose versions the run header records.
DEPENDENCIES = ("pytest", "httpx", "aiohttp", "numpy")
# Options whose value is a secret, beyond those named like one (_SECRET_NAME).
SECRET_OPTIONS = ("--deepseek-api-key",)
# Query keys whose value is a secret (compared lower case, `-` read as `_`; `x_api_key` counts too).
SECRET_QUERY_KEYS = ("key", "token", "api_key", "apikey", "secret", "password", "sig")
# Schemes whose query is options, never secrets (`sim://deepseek-v3?step_base_ms=8`).
OPTION_SCHEMES = ("sim",)
# An option or ini name ending like a secret's.
_SECRET_NAME = r"(?i)(?:^|[-_])(api[-_]?keys?|token|secret|password|passwd)$"
# A URL's start (`scheme://`), and a whole URL split into scheme, authority, path, query, fragment.
_URL_START = r"(?i)\b[a-z][a-z0-9+.-]*://"
_URL_PARTS = r"(?is)^([a-z][a-z0-9+.-]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?$"
_OVERRIDE_INI = ("-o", "--override-ini")
_TEXT_LIMIT = 200  # a header or version longer than this is cut (a server may say anything)


@dataclass(frozen=True)
class ServerFacts:
    """What the endpoint said about itself when it was probed (each field None when it did not say)."""

    version: str | None = None
    version_route: str | None = None  # the route the version was read from
    model_id: str | None = None
    model_root: str | None = None
    model_owned_by: str | None = None
    max_model_len: int | None = None
    model_created: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, value), SERVER_HEADERS only

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (headers as a mapping)."""
        return {"version": self.version, "version_route": self.version_route, "model_id": self.model_id,
                "model_root": self.model_root, "model_owned_by": self.model_owned_by,
                "max_model_len": self.max_model_len, "model_created": self.model_created,
                "headers": dict(self.headers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "ServerFacts":
        """Inverse of `to_json`; None or `{}` (JSON written before these facts existed) is no facts."""
        if not data:
            return cls()
        headers = data.get("headers") or {}
        pairs = headers.items() if isinstance(headers, Mapping) else (tuple(pair) for pair in headers)
        return cls(version=data.get("version"), version_route=data.get("version_route"),
                   model_id=data.get("model_id"), model_root=data.get("model_root"),
                   model_owned_by=data.get("model_owned_by"), max_model_len=data.get("max_model_len"),
                   model_created=data.get("model_created"), headers=tuple((str(k), str(v)) for k, v in pairs))

    def fingerprint(self) -> dict[str, Any]:
        """The fields a result's fingerprint carries. The model's `created` is left out: vLLM stamps it
        with the time of each request and the simulator with its start, so it differs in every run."""
        return {"server_version": self.version, "model_root": self.model_root,
                "model_owned_by": self.model_owned_by, "max_model_len": self.max_model_len,
                "server_headers": dict(self.headers)}


def _text(value: Any) -> str | None:
    """A short text for a fact the server gave (None for nothing, numbers as text)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text[:_TEXT_LIMIT] or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def model_entry_facts(entries: Iterable[Any], model: str) -> dict[str, Any]:
    """The kept fields of `model`'s entry among a `/v1/models` answer's `data` (empty without one)."""
    entry = next((e for e in entries if isinstance(e, Mapping) and str(e.get("id")) == model), None)
    if entry is None:
        return {}
    out: dict[str, Any] = {}
    for source, name in MODEL_FIELDS:
        value = entry.get(source)
        out[name] = _int(value) if name in ("max_model_len", "model_created") else _text(value)
    return out


def version_of(answer: Any) -> str | None:
    """The version a version route answered: `{"version": ...}` (vLLM, SGLang) or a bare string."""
    if isinstance(answer, Mapping):
        return _text(answer.get("version"))
    return _text(answer) if isinstance(answer, str) else None


def server_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The response headers that name the server software (SERVER_HEADERS), in that order; no other
    header (never an authorization or a cookie) is kept."""
    found: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in SERVER_HEADERS and value.strip():
            found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
    return tuple((name, found[name][:_TEXT_LIMIT]) for name in SERVER_HEADERS if name in found)


@functools.lru_cache(maxsize=None)
def _pattern(source: str) -> re.Pattern[str]:
    """A pattern compiled on first use, off the plugin's import path."""
    return re.compile(source)


def _is_secret_option(name: str) -> bool:
    """True for an option whose value is a secret (a key file's path is not: `--x-api-key-file`)."""
    return name in SECRET_OPTIONS or bool(_pattern(_SECRET_NAME).search(name.lstrip("-")))


def _override_ini(value: str) -> str:
    """`name=value` of `-o`, with the value masked when the name is a secret's."""
    name, sep, _ = value.partition("=")
    return f"{name}={MASK}" if sep and _is_secret_option(name) else value


def _is_secret_query_key(name: str) -> bool:
    key = name.lower().replace("-", "_")
    return any(key == secret or key.endswith("_" + secret) for secret in SECRET_QUERY_KEYS)


def _redacted_query(query: str) -> str:
    """`query` with the value of each secret-looking key masked (order and everything else kept)."""
    pairs = []
    for pair in query.split("&"):
        name, sep, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if sep and _is_secret_query_key(name) else pair)
    return "&".join(pairs)


def redacted_url(url: str) -> str:
    """`url` as it may be written down: credentials (`user:pass@`) become `***@` and the values of
    query keys that look secret (SECRET_QUERY_KEYS) become `***`; a `sim://` URL's query is options
    and stays. Text that is not a `scheme://` URL is returned unchanged."""
    parts = _pattern(_URL_PARTS).match(url)
    if parts is None:
        return url
    scheme, authority, path, query, fragment = parts.groups()
    if "@" in authority:
        authority = f"{MASK}@{authority.rpartition('@')[2]}"
    if query is not None and scheme.lower() not in OPTION_SCHEMES:
        query = _redacted_query(query)
    return f"{scheme}://{authority}{path}{'' if query is None else '?' + query}{fragment or ''}"


def _redacted_urls(text: str) -> str:
    """`text` with each URL in it passed through `redacted_url` (a URL runs to the next one's start)."""
    starts = [m.start() for m in _pattern(_URL_START).finditer(text)]
    if not starts:
        return text
    ends = starts[1:] + [len(text)]
    return text[:starts[0]] + "".join(redacted_url(text[a:b]) for a, b in zip(starts, ends))


def redacted_command_line(args: Sequence[str], secrets: Iterable[KeyLike] = ()) -> list[str]:
    """`args` with secrets removed: the value of `--deepseek-api-key` and of any option named like a
    secret (`--opt value` and `--opt=value`), such values of `-o name=value`, credentials in URLs
    (`redacted_url`), and every form of `secrets` (`credentials.redact`) anywhere."""
    secrets = list(secrets)
    out: list[str] = []
    masked_next = ini_next = False
    for arg in args:
        if masked_next:
            item, masked_next = MASK, False
        elif ini_next:
            item, ini_next = _override_ini(arg), False
        elif arg in _OVERRIDE_INI:
            item, ini_next = arg, True
        elif arg.startswith("--override-ini="):
            item = "--override-ini=" + _override_ini(arg[len("--override-ini="):])
        elif arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            item = "-o" + _override_ini(arg[2:])
        elif arg.startswith("--"):
            name, sep, _ = arg.partition("=")
            secret = _is_secret_option(name)
            item = f"{name}={MASK}" if secret and sep else arg
            masked_next = secret and not sep
        else:
            item = arg
        out.append(redact(_redacted_urls(item), secrets))
    return out


def client_facts() -> dict[str, Any]:
    """The client's part of the run's fingerprint: the host name and the versions of the plugin's
    key dependencies (None for one not installed)."""
    import socket
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"hostname": socket.gethostname(), "dependencies": versions}
