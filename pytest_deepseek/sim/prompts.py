"""Prompt token counting with the embedded tokenizer; chat prompts through its chat template.

The chat template is compiled once here (rendering through `render_chat` compiles it on every
call, about 10 ms), with the same Jinja settings, so results are identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..tokenizers import FastTokenizer, TextTokenizer, TokenizerError, embedded_tokenizer


class PromptCounter:
    """Token ids of completion prompts and chat conversations."""

    def __init__(self, tok: TextTokenizer | None = None) -> None:
        self.tok = tok if tok is not None else embedded_tokenizer()
        self._template: Any = None
        self._bos = ""
        if isinstance(self.tok, FastTokenizer) and self.tok._chat_template:
            import jinja2.sandbox

            env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = _raise
            self._template = env.from_string(self.tok._chat_template)
            self._bos = self.tok._bos or ""

    def render(self, messages: Sequence[dict[str, Any]]) -> str:
        """The prompt text of `messages` (generation prompt on)."""
        if self._template is None:
            return self.tok.render_chat(messages)
        return str(self._template.render(messages=list(messages), add_generation_prompt=True,
                                         bos_token=self._bos, eos_token=""))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens added)."""
        return self.tok.encode(text)


def _raise(message: str) -> None:
    raise TokenizerError(f"chat template error: {message}")
