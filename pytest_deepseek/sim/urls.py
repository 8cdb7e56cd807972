"""`sim://PRESET?key=value&...` endpoint URLs."""

from __future__ import annotations

import urllib.parse

from .config import SimConfig, SimConfigError, apply_overrides, valid_keys
from .presets import get_preset, preset_names

SCHEME = "sim"


def is_sim_url(url: str) -> bool:
    """True when `url` names the simulator (`sim://...`)."""
    return url.strip().lower().startswith(f"{SCHEME}://")


def parse_sim_url(url: str) -> SimConfig:
    """The config a `sim://PRESET?key=value&...` URL names.

    Raises SimConfigError (a ValueError) that lists the presets and the valid keys.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() != SCHEME:
        raise SimConfigError(f"not a sim URL: {url!r} (expected sim://PRESET?key=value&...)")
    name = (parts.netloc + parts.path).strip("/") or "deepseek-v3"
    try:
        base = get_preset(name)
    except SimConfigError:
        raise SimConfigError(
            f"unknown sim preset {name!r} in {url!r}; presets: {', '.join(preset_names())}; "
            f"keys: {', '.join(valid_keys())}, content_<name>, fault_<name>"
        ) from None
    try:
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise SimConfigError(f"bad query in sim URL {url!r}: {exc}") from None
    overrides: dict[str, str] = {}
    for key, value in query:
        if key in overrides:
            raise SimConfigError(f"sim URL {url!r} sets {key!r} twice")
        overrides[key] = value
    try:
        return apply_overrides(base, overrides)
    except SimConfigError as exc:
        raise SimConfigError(f"{exc} (in {url!r}; presets: {', '.join(preset_names())})") from None


def to_sim_url(config: SimConfig) -> str:
    """A `sim://` URL that parses back to `config` (fields that differ from its preset)."""
    try:
        base = get_preset(config.preset)
    except SimConfigError:
        base = SimConfig()
    query: list[tuple[str, str]] = []
    for key in valid_keys():
        value = getattr(config, key)
        if value != getattr(base, key):
            query.append((key, str(value)))
    query += [(f"content_{k}", v) for k, v in sorted(config.content_options.items())]
    query += [(f"fault_{k}", v) for k, v in sorted(config.faults.items())]
    name = config.preset if config.preset in preset_names() else "deepseek-v3"
    return f"{SCHEME}://{name}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
