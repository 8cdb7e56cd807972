"""Prompt sets: exact-length random prompts, sonnet lines, ShareGPT and JSONL files.

Everything is decided before the run from a seed, so a run is reproducible and its prompt set can
be hashed into the results. Exact length means: the tokenizer that counts (the client's, shifted by
the server's `/tokenize` offset when the server has one) gives exactly the target for every prompt.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..tokenizers import TextTokenizer
from .records import ApiKind, RequestSpec
from .spec import DATASETS, EXACT_LENGTH_DATASETS


class WorkloadError(Exception):
    """A prompt set could not be built as asked; the message says why."""


@dataclass(frozen=True)
class PromptItem:
    """One prompt of a set, before it becomes a request."""

    text: str
    input_len: int | None  # exact token count when the workload guarantees it
    output_len: int


@dataclass(frozen=True)
class WorkloadParams:
    """What to build: see `build_prompt_set`."""

    dataset: str
    count: int
    input_len: int
    output_len: int
    seed: int = 0
    prefix_len: int = 0
    dataset_path: str | None = None
    api: ApiKind = "completions"
    # Tokens the server adds to every prompt beyond the client tokenizer's count (e.g. a BOS), or
    # the chat template's overhead; measured by the caller against the server when possible.
    count_offset: int = 0


def _word_pool(tokenizer: TextTokenizer) -> list[int]:
    """Token ids that decode to a plain lowercase word with a leading space (stable when re-encoded)."""
    vocab_size = tokenizer.vocab_size
    pool: list[int] = []
    rng = random.Random(1234)
    candidates = rng.sample(range(100, min(vocab_size, 100_000)), k=min(6000, vocab_size - 100))
    for token_id in candidates:
        piece = tokenizer.decode([token_id])
        word = piece[1:]
        if piece.startswith(" ") and 2 <= len(word) <= 10 and word.isascii() and word.isalpha() and word.islower():
            if tokenizer.encode(piece) == [token_id]:
                pool.append(token_id)
        if len(pool) >= 1500:
            break
    if len(pool) < 50:
        raise WorkloadError(f"tokenizer {tokenizer.name!r} has too few plain word tokens for random prompts")
    return pool


def fit_to_length(
    text: str, target: int, count: Callable[[str], int], filler: Callable[[int], str], max_rounds: int = 64
) -> str:
    """Trim or pad `text` until `count(text) == target` (pad with `filler(n)` words; trim by words)."""
    for _ in range(max_rounds):
        n = count(text)
        if n == target:
            return text
        if n < target:
            text = text + filler(target - n)
        else:
            words = text.split(" ")
            excess = n - target
            # Drop roughly the excess in words from the end; one word is at least one token.
            drop = max(1, min(len(words) - 1, excess))
            text = " ".join(words[:-drop]) if len(words) > 1 else text[: max(1, len(text) // 2)]
    raise WorkloadError(f"could not fit a prompt to exactly {target} tokens (stuck at {count(text)})")


class PromptBuilder:
    """Builds exact-length texts for one tokenizer."""

    def __init__(self, tokenizer: TextTokenizer, api: ApiKind, count_offset: int = 0) -> None:
        self.tokenizer = tokenizer
        self.api = api
        self.count_offset = count_offset
        self._pool = _word_pool(tokenizer)

    def count(self, text: str) -> int:
        """Tokens the server will count for this prompt text (chat: the rendered template)."""
        if self.api == "chat":
            rendered = self.tokenizer.render_chat([{"role": "user", "content": text}])
            return len(self.tokenizer.encode(rendered)) + self.count_offset
        return len(self.tokenizer.encode(text)) + self.count_offset

    def random_words(self, rng: random.Random, n: int) -> str:
        """`n` random pool words as text (each word is exactly one token)."""
        return self.tokenizer.decode([rng.choice(self._pool) for _ in range(n)])

    def exact(self, seed_text: str, target: int, rng: random.Random) -> str:
        """`seed_text` trimmed or padded with random words to exactly `target` counted tokens."""
        if target < 1:
            raise WorkloadError("input_len must be at least 1")
        return fit_to_length(seed_text, target, self.count, lambda n: self.random_words(rng, n))


def _sonnet_lines() -> list[str]:
    text = resources.files("pytest_deepseek").joinpath("data/sonnets.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _random_prompts(builder: PromptBuilder, params: WorkloadParams, rng: random.Random) -> list[PromptItem]:
    overhead = builder.count("") if params.api == "chat" else params.count_offset
    content_len = params.input_len - overhead
    if content_len < 1:
        raise WorkloadError(
            f"input_len {params.input_len} is shorter than the fixed prompt overhead ({overhead} tokens)"
        )
    items = []
    for _ in range(params.count):
        text = builder.random_words(rng, content_len)
        items.append(PromptItem(builder.exact(text, params.input_len, rng), params.input_len, params.output_len))
    return items


def _sonnet_prompts(builder: PromptBuilder, params: WorkloadParams, rng: random.Random) -> list[PromptItem]:
    lines = _sonnet_lines()
    instruction = "Pick as many lines as you can from these poem lines:\n"
    prefix_lines: list[str] = []
    # The shared prefix: the first poem lines, up to prefix_len tokens (same for every prompt).
    for line in lines:
        if builder.count(instruction + "\n".join([*prefix_lines, line])) > max(params.prefix_len, 0):
            break
        prefix_lines.append(line)
    prefix = instruction + "".join(f"{line}\n" for line in prefix_lines)
    items = []
    for _ in range(params.count):
        body = prefix
        missing = params.input_len - builder.count(body)
        while missing > 0:
            # About 10 tokens a line: add lines in bulk, then recount once per round.
            body += "".join(rng.choice(lines) + "\n" for _ in range(max(1, missing // 12)))
            missing = params.input_len - builder.count(body)
        items.append(PromptItem(builder.exact(body, params.input_len, rng), params.input_len, params.output_len))
    return items


def _sharegpt_prompts(params: WorkloadParams, rng: random.Random) -> list[PromptItem]:
    path = Path(params.dataset_path or "")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkloadError(f"cannot read ShareGPT file {path}: {exc}") from exc
    prompts = []
    for entry in data if isinstance(data, list) else []:
        turns = entry.get("conversations") or entry.get("conversation") or []
        first = next((t for t in turns if t.get("from") in ("human", "user")), None)
        if first and isinstance(first.get("value"), str) and first["value"].strip():
            prompts.append(first["value"])
    if not prompts:
        raise WorkloadError(f"{path}: no conversations with a human turn found")
    rng.shuffle(prompts)
    return [PromptItem(prompts[i % len(prompts)], None, params.output_len) for i in range(params.count)]


def _jsonl_prompts(params: WorkloadParams) -> list[PromptItem]:
    path = Path(params.dataset_path or "")
    items: list[PromptItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise WorkloadError(f"cannot read prompt file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            items.append(PromptItem(str(record["prompt"]), None, int(record.get("output_len", params.output_len))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise WorkloadError(f"{path}:{number}: expected {{\"prompt\": ..., \"output_len\": ...}} ({exc})") from exc
    if not items:
        raise WorkloadError(f"{path}: no prompts")
    return [items[i % len(items)] for i in range(params.count)]


def build_prompt_set(params: WorkloadParams, builder: PromptBuilder | None) -> list[PromptItem]:
    """The prompt set for `params` (deterministic given `params.seed`)."""
    rng = random.Random(params.seed)
    if params.dataset in EXACT_LENGTH_DATASETS and builder is None:
        raise WorkloadError(f"dataset {params.dataset!r} needs a tokenizer")
    if params.dataset == "random":
        assert builder is not None
        return _random_prompts(builder, params, rng)
    if params.dataset == "sonnet":
        assert builder is not None
        return _sonnet_prompts(builder, params, rng)
    if params.dataset == "sharegpt":
        return _sharegpt_prompts(params, rng)
    if params.dataset == "jsonl":
        return _jsonl_prompts(params)
    raise WorkloadError(f"unknown dataset {params.dataset!r} ({', '.join(DATASETS)})")


def prompt_set_hash(items: Sequence[PromptItem]) -> str:
    """A short sha256 over the prompts and output lengths, for the results."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.text.encode("utf-8"))
        digest.update(b"\x00%d\x00" % item.output_len)
    return digest.hexdigest()[:16]


def to_requests(
    items: Sequence[PromptItem], *, api: ApiKind, model: str, warmup: int, force_output_len: bool,
    extra_body: dict | None = None,
) -> list[RequestSpec]:
    """Request specs: the first `warmup` items are marked warmup (reused cyclically if needed)."""
    specs: list[RequestSpec] = []
    for index, item in enumerate(items):
        specs.append(
            RequestSpec(
                index=index,
                api=api,
                model=model,
                prompt=item.text if api == "completions" else None,
                messages=({"role": "user", "content": item.text},) if api == "chat" else None,
                input_len=item.input_len,
                max_tokens=item.output_len,
                force_output_len=force_output_len,
                warmup=index < warmup,
                extra_body=dict(extra_body or {}),
            )
        )
    return specs
