"""The dialect registry: names, parsers, and auto-detection from the first lines."""

from __future__ import annotations

from typing import Callable, Sequence

from . import deepspeed, hf, jsonl, megatron, mindformers, mmengine, torchtitan
from .base import Parser

# Detection order: the most specific signatures first, plain JSONL last.
_DIALECTS: list[tuple[str, Callable[[Sequence[str]], bool], type[Parser]]] = [
    (mmengine.NAME, mmengine.sniff, mmengine.MmengineParser),
    (mindformers.NAME, mindformers.sniff, mindformers.MindformersParser),
    (megatron.NAME, megatron.sniff, megatron.MegatronParser),
    (torchtitan.NAME, torchtitan.sniff, torchtitan.TorchtitanParser),
    (deepspeed.NAME, deepspeed.sniff, deepspeed.DeepspeedParser),
    (hf.NAME, hf.sniff, hf.HfParser),
    (jsonl.NAME, jsonl.sniff, jsonl.JsonlParser),
]
ALIASES = {"xtuner": "mmengine", "mindspeed": "megatron", "megatron-deepspeed": "megatron",
           "transformers": "hf", "trl": "hf", "llamafactory": "hf", "llama-factory": "hf"}
DIALECT_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _DIALECTS)


def canonical(name: str) -> str:
    """The registry name for a dialect name or alias; ValueError for an unknown name."""
    n = name.strip().lower()
    n = ALIASES.get(n, n)
    if n not in DIALECT_NAMES and n != "auto":
        raise ValueError(f"unknown dialect {name!r}; known: auto, {', '.join(DIALECT_NAMES)}")
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
