"""Generation settings for accuracy runs, read from the profile's `accuracy.generation:` map.

The backends default to greedy decoding. DeepSeek-R1's published evaluation recipe is different:
temperature 0.6, top-p 0.95, up to 32,768 generated tokens, and several samples per question
(between 4 and 64 depending on the set's size) averaged into pass@1. `R1_RECIPE` writes that down;
a profile opts in by copying it (e.g. `generation: {temperature: 0.6, top_p: 0.95,
max_tokens: 32768, repeats: 4}`). Repeats multiply the run time by that factor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEYS = ("temperature", "top_p", "max_tokens", "repeats", "concurrency", "timeout_s", "retries", "seed")


class GenerationError(ValueError):
    """A generation setting has a wrong type or an impossible value."""


@dataclass(frozen=True)
class GenerationSettings:
    """What every backend is asked to sample with; None leaves the backend's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    repeats: int = 1
    concurrency: int = 8
    timeout_s: float | None = None
    retries: int | None = None
    seed: int | None = None


R1_RECIPE = GenerationSettings(temperature=0.6, top_p=0.95, max_tokens=32768, repeats=4)


def generation_settings(values: Mapping[str, Any] | None) -> GenerationSettings:
    """Settings from the `generation:` map; unknown keys and impossible values are errors."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise GenerationError(f"unknown generation setting(s) {unknown}; known: {', '.join(KEYS)}")
    return GenerationSettings(
        temperature=_number(values, "temperature", 0.0, 2.0),
        top_p=_number(values, "top_p", 0.0, 1.0),
        max_tokens=_integer(values, "max_tokens", 1),
        repeats=_integer(values, "repeats", 1) or 1,
        concurrency=_integer(values, "concurrency", 1) or 8,
        timeout_s=_number(values, "timeout_s", 0.0, None),
        retries=_integer(values, "retries", 0),
        seed=_integer(values, "seed", 0),
    )


def _number(values: Mapping[str, Any], key: str, lo: float, hi: float | None) -> float | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GenerationError(f"generation.{key} must be a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise GenerationError(f"generation.{key} must be in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
    return float(value)


def _integer(values: Mapping[str, Any], key: str, lo: int) -> int | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenerationError(f"generation.{key} must be an integer, got {value!r}")
    if value < lo:
        raise GenerationError(f"generation.{key} must be >= {lo}, got {value}")
    return value
