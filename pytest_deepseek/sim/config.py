"""The simulator's configuration: one frozen dataclass, built from presets and string overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .faults import FAULT_NAMES, SELECTOR_FORMS, FaultSpecError, parse_faults


class SimConfigError(ValueError):
    """A simulator configuration value or key is invalid; the message lists what is valid."""


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes one simulated engine. Times in ms, rates in tokens/s."""

    preset: str = "custom"
    model: str = "deepseek-ai/DeepSeek-V3"  # the served model name
    seed: int = 0
    max_num_seqs: int = 64  # batch limit: sequences admitted at once (prefilling + decoding)
    prefill_tps: float = 20000.0  # prefill speed, prompt tokens/s
    prefill_chunk: int = 0  # chunked prefill: prompt tokens per step across sequences (0 = off)
    step_base_ms: float = 20.0  # decode step time = step_base_ms + step_per_seq_ms × running seqs
    step_per_seq_ms: float = 0.3
    tokens_per_step: int = 1  # >1: multi-token prediction, several tokens per chunk
    reasoning_tokens: int = 0  # R1-style reasoning tokens emitted before the answer (0 = off)
    max_model_len: int = 32768
    fail_every: int = 0  # every Nth generation request answers HTTP 500 (as fault_http_500=every:N)
    fail_midstream_every: int = 0  # every Nth stream is closed mid-body (reset_midstream, FIN rather than RST)
    error_event_every: int = 0  # every Nth stream carries an {"error": ...} event mid-stream
    stall_s: float = 3600.0  # fault stall: the pause after half the tokens
    retry_after_s: int = 1  # fault rate_limited: the Retry-After header value
    refused_s: float = 2.0  # fault refused: how long the server stops listening
    header_trickle_s: float = 0.5  # fault slow_headers: the time between two header bytes
    max_lag_ms: float = 20.0  # when the loop falls further behind the schedule, re-anchor to now
    content: str = "random"  # a name in content.CONTENT_SOURCES or "module:Class"
    content_options: Mapping[str, str] = field(default_factory=dict)  # content_* keys, prefix removed
    faults: Mapping[str, str] = field(default_factory=dict)  # fault_<name>=<selector> keys, prefix removed

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with `changes` applied (typed values)."""
        return dataclasses.replace(self, **changes)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON form (what the launcher hands to the child process)."""
        data = dataclasses.asdict(self)
        data["content_options"] = dict(self.content_options)
        data["faults"] = dict(self.faults)
        return data

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> SimConfig:
        """Rebuild a config written by `to_json_dict`."""
        return cls(**{**data, "content_options": dict(data.get("content_options", {})),
                      "faults": dict(data.get("faults", {}))})


# Keys a user may set, with their types; `preset`, `content_options` and `faults` are not plain keys.
_FIELD_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float}[str(f.type)]
    for f in dataclasses.fields(SimConfig)
    if f.name not in ("preset", "content_options", "faults")
}
CONTENT_PREFIX = "content_"
FAULT_PREFIX = "fault_"


def valid_keys() -> list[str]:
    """Keys accepted by `apply_overrides` (plus any `content_*` key and `fault_<name>` keys)."""
    return sorted(_FIELD_TYPES)


def prefixed_keys_help() -> str:
    """How the prefixed keys are spelled, for error messages."""
    return (f"content_<name> options passed to the content source, and fault_<name>=<selector> "
            f"(faults: {', '.join(FAULT_NAMES)}; selectors: {', '.join(SELECTOR_FORMS)})")


def _coerce(key: str, raw: str) -> Any:
    kind = _FIELD_TYPES[key]
    try:
        value = kind(raw)
    except ValueError:
        raise SimConfigError(f"sim option {key}={raw!r}: expected {kind.__name__}") from None
    if kind in (int, float) and value < 0:
        raise SimConfigError(f"sim option {key}={raw!r}: must be >= 0")
    return value


def apply_overrides(config: SimConfig, overrides: Mapping[str, str]) -> SimConfig:
    """Apply string `key=value` overrides; `content_*` keys go to the content source."""
    changes: dict[str, Any] = {}
    content_options = dict(config.content_options)
    faults = dict(config.faults)
    for key, raw in overrides.items():
        if key.startswith(CONTENT_PREFIX) and len(key) > len(CONTENT_PREFIX):
            content_options[key[len(CONTENT_PREFIX) :]] = raw
        elif key.startswith(FAULT_PREFIX):
            faults[key[len(FAULT_PREFIX) :]] = raw
        elif key in _FIELD_TYPES:
            changes[key] = _coerce(key, raw)
        else:
            raise SimConfigError(
                f"unknown sim option {key!r}; valid keys: {', '.join(valid_keys())}, "
                f"and {prefixed_keys_help()}"
            )
    result = config.replace(**changes, content_options=content_options, faults=faults)
    validate(result)
    return result


def validate(config: SimConfig) -> None:
    """Raise SimConfigError when values cannot describe an engine."""
    if config.max_num_seqs < 1:
        raise SimConfigError("sim option max_num_seqs must be >= 1")
    if config.tokens_per_step < 1:
        raise SimConfigError("sim option tokens_per_step must be >= 1")
    if config.prefill_tps <= 0:
        raise SimConfigError("sim option prefill_tps must be > 0")
    if not config.model:
        raise SimConfigError("sim option model must not be empty")
    try:
        parse_faults(config.faults)
    except FaultSpecError as exc:
        raise SimConfigError(str(exc)) from None
