"""What the simulator says: the content interface, the default random-word source, the registry.

A content source decides the text of one answer (one piece per token) and, optionally, its
reasoning and an HTTP failure. The engine decides when each piece is emitted.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from .words import word_pool

CONTENT_SOURCES: dict[str, str] = {
    "random": "pytest_deepseek.sim.content:RandomWordContent",
    "answer_key": "pytest_deepseek.sim.answer_key:AnswerKeyContent",
}


class ContentError(ValueError):
    """A content source could not be found or built."""


@dataclass
class Generation:
    """The output of one request, one piece of text per token."""

    answer: list[str]  # answer pieces, one per token
    reasoning: list[str] = field(default_factory=list)  # reasoning pieces, one per token
    fail_status: int | None = None  # answer this HTTP status (JSON error body) instead of streaming


class ContentSource(Protocol):
    """Decides what one request generates."""

    def generate(
        self,
        *,
        prompt_text: str,
        messages: list[dict] | None,
        max_tokens: int,
        min_tokens: int,
        ignore_eos: bool,
        rng: random.Random,
    ) -> Generation: ...


def random_words(rng: random.Random, n: int) -> list[str]:
    """`n` pieces drawn from the plain-word pool."""
    return rng.choices(word_pool(), k=n) if n > 0 else []


class RandomWordContent:
    """Random plain words; without `ignore_eos` the answer ends at a sampled EOS length.

    The EOS length is geometric with mean `mean_tokens` (a `content_mean_tokens` option), never
    below `min_tokens`.
    """

    def __init__(self, mean_tokens: str | int = 256) -> None:
        self.mean_tokens = max(1.0, float(mean_tokens))

    def generate(
        self,
        *,
        prompt_text: str,
        messages: list[dict] | None,
        max_tokens: int,
        min_tokens: int,
        ignore_eos: bool,
        rng: random.Random,
    ) -> Generation:
        """Answer pieces: `max_tokens` with ignore_eos, else an EOS length capped at `max_tokens`."""
        if ignore_eos:
            n = max_tokens
        else:
            natural = 1 + int(rng.expovariate(1.0 / self.mean_tokens))
            n = min(max_tokens, max(min_tokens, natural))
        return Generation(answer=random_words(rng, n))


def load_content(name: str, options: dict[str, str] | None = None) -> ContentSource:
    """Build the content source `name` (a registry name or "module:Class") with `options` as kwargs."""
    target = CONTENT_SOURCES.get(name, name)
    if ":" not in target:
        raise ContentError(
            f"unknown content source {name!r}; known: {', '.join(sorted(CONTENT_SOURCES))}, or module:Class"
        )
    module_name, _, class_name = target.partition(":")
    try:
        cls: Any = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ContentError(f"cannot load content source {name!r} ({target}): {exc}") from exc
    try:
        source: ContentSource = cls(**(options or {}))
        return source
    except TypeError as exc:
        raise ContentError(f"content source {name!r} rejected options {sorted(options or {})}: {exc}") from exc
