"""OpenAI/vLLM wire format: SSE chunk bytes built from per-request templates, JSON bodies, errors.

A chunk is `data: {...}\\n\\n`. Every request precomputes the constant head of its chunks
(`id`, `object`, `created`, `model`), so a token chunk costs two byte joins and the JSON text of
its pieces.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

Api = Literal["completions", "chat"]
DONE = b"data: [DONE]\n\n"

_json_cache: dict[str, bytes] = {}


def json_text(text: str) -> bytes:
    """`text` as a JSON string literal (UTF-8), cached for short pieces."""
    cached = _json_cache.get(text)
    if cached is None:
        cached = json.dumps(text, ensure_ascii=False).encode()
        if len(text) <= 32 and len(_json_cache) < 65536:
            _json_cache[text] = cached
    return cached


def usage_json(prompt_tokens: int, completion_tokens: int) -> bytes:
    """The `usage` object in vLLM's field order."""
    return b'{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}' % (
        prompt_tokens, prompt_tokens + completion_tokens, completion_tokens)


def _finish(reason: str | None) -> bytes:
    return b"null" if reason is None else json_text(reason)


@dataclass
class ChunkTemplate:
    """Pre-encoded pieces of one request's SSE chunks."""

    api: Api
    head: bytes  # b'data: {"id":...,"model":...,"choices":['
    usage_head: bytes  # b'data: {"id":...,"model":...,"choices":[],"usage":'

    @classmethod
    def make(cls, api: Api, response_id: str, model: str, created: int | None = None) -> ChunkTemplate:
        """Templates for `api` chunks of response `response_id`."""
        obj = "text_completion" if api == "completions" else "chat.completion.chunk"
        created = int(time.time()) if created is None else created
        common = b'data: {"id":%b,"object":"%b","created":%d,"model":%b,"choices":[' % (
            json_text(response_id), obj.encode(), created, json_text(model))
        return cls(api, common, common + b'],"usage":')

    def token(self, text: bytes, *, reasoning: bool = False, finish: str | None = None,
              usage: bytes | None = None) -> bytes:
        """A chunk carrying `text` (a JSON string literal) on the answer or reasoning channel."""
        if self.api == "completions":
            choice = b'{"index":0,"text":%b,"logprobs":null,"finish_reason":%b,"stop_reason":null}' % (
                text, _finish(finish))
        else:
            key = b"reasoning_content" if reasoning else b"content"
            choice = b'{"index":0,"delta":{"%b":%b},"logprobs":null,"finish_reason":%b}' % (
                key, text, _finish(finish))
        tail = b"]}\n\n" if usage is None else b'],"usage":%b}\n\n' % usage
        return self.head + choice + tail

    def role(self, usage: bytes | None = None) -> bytes:
        """The first chat chunk: the assistant role with empty content."""
        choice = b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}'
        tail = b"]}\n\n" if usage is None else b'],"usage":%b}\n\n' % usage
        return self.head + choice + tail

    def usage_only(self, usage: bytes) -> bytes:
        """The final usage chunk (`choices: []`) sent with `include_usage`."""
        return self.usage_head + usage + b"}\n\n"


def error_body(message: str, kind: str, code: int) -> dict[str, Any]:
    """The error object of a JSON error body or an SSE error event."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_event(message: str, kind: str = "InternalServerError", code: int = 500) -> bytes:
    """An `{"error": ...}` SSE event."""
    return b"data: " + json.dumps(error_body(message, kind, code)).encode() + b"\n\n"


def full_response(api: Api, response_id: str, model: str, created: int, *, text: str, reasoning: str | None,
                  finish_reason: str | None, prompt_tokens: int, completion_tokens: int,
                  usage: bool = True) -> dict[str, Any]:
    """A non-streaming completion or chat completion body (without `usage` when `usage` is False)."""
    counts = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
              "completion_tokens": completion_tokens}
    if api == "completions":
        choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason,
                                  "stop_reason": None}
        obj = "text_completion"
    else:
        message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": []}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason,
                  "stop_reason": None}
        obj = "chat.completion"
    body: dict[str, Any] = {"id": response_id, "object": obj, "created": created, "model": model,
                            "choices": [choice]}
    if usage:
        body["usage"] = counts
    return body
