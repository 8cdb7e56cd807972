"""The dialect registry: names, parsers, and auto-detection from the first lines."""

from __future__ import annotations

from typing import Callable, Sequence

from ..spec import AUTO_DIALECT, DIALECT_ALIASES, DIALECTS
from . import deepspeed, hf, jsonl, megatron, mindformers, mmengine, torchtitan
from .base import Parser

_BY_NAME: dict[str, tuple[Callable[[Sequence[str]], bool], type[Parser]]] = {
    mmengine.NAME: (mmengine.sniff, mmengine.MmengineParser),
    mindformers.NAME: (mindformers.sniff, mindformers.MindformersParser),
    megatron.NAME: (megatron.sniff, megatron.MegatronParser),
    torchtitan.NAME: (torchtitan.sniff, torchtitan.TorchtitanParser),
    deepspeed.NAME: (deepspeed.sniff, deepspeed.DeepspeedParser),
    hf.NAME: (hf.sniff, hf.HfParser),
    jsonl.NAME: (jsonl.sniff, jsonl.JsonlParser),
}
# In the detection order `spec.DIALECTS` gives (a name without a parser fails here, at import).
_DIALECTS = [(name, *_BY_NAME[name]) for name in DIALECTS]
DIALECT_NAMES: tuple[str, ...] = DIALECTS


def canonical(name: str) -> str:
    """The registry name for a dialect name or alias; ValueError for an unknown name."""
    n = name.strip().lower()
    n = DIALECT_ALIASES.get(n, n)
    if n not in DIALECT_NAMES and n != AUTO_DIALECT:
        raise ValueError(f"unknown dialect {name!r}; known: {AUTO_DIALECT}, {', '.join(DIALECT_NAMES)}")
    return n


def parser_for(name: str) -> Parser:
    """A fresh parser of the named dialect."""
    n = canonical(name)
    for dname, _, cls in _DIALECTS:
        if dname == n:
            return cls()
    raise ValueError(f"no parser for {name!r}")


def detect(lines: Sequence[str]) -> str | None:
    """The first dialect whose signature appears in ``lines`` (normalised), or None."""
    for name, sniff, _ in _DIALECTS:
        if sniff(lines):
            return name
    return None
