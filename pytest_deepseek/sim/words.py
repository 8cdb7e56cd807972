"""A pool of "plain word" tokens of the embedded tokenizer.

Each pool entry is a lowercase ASCII word with a leading space that is exactly one token and
encodes back to that same token. The tokenizer's pre-tokenizer splits text before every
space-led word, so a sequence of pool words re-tokenizes to exactly one token per word.
"""

from __future__ import annotations

import functools
import re

from ..tokenizers import FastTokenizer, embedded_tokenizer

_WORD = re.compile("\u0120[a-z]{3,9}")  # byte-level BPE spells a leading space as U+0120
POOL_SIZE = 4096


def build_word_pool(tok: FastTokenizer, size: int = POOL_SIZE) -> tuple[str, ...]:
    """Up to `size` plain-word pieces of `tok`, lowest ids first (so the pool is stable)."""
    vocab: dict[str, int] = tok._tok.get_vocab()  # token string → id
    candidates = sorted(i for s, i in vocab.items() if _WORD.fullmatch(s))
    pieces = [tok.decode([i]) for i in candidates]
    encoded = tok.encode_batch(pieces)
    pool = [p for i, p, ids in zip(candidates, pieces, encoded) if ids == [i]]
    return tuple(pool[:size])


@functools.lru_cache(maxsize=1)
def word_pool() -> tuple[str, ...]:
    """The plain-word pool of the embedded tokenizer (cached)."""
    return build_word_pool(embedded_tokenizer())
