"""Server-sent events: an incremental byte parser and an interpreter of OpenAI stream chunks.

Pure code, no I/O. `SSEParser` turns the bytes of a `text/event-stream` body, cut at arbitrary
points, into events. `StreamInterpreter` folds the `data` of each event of one OpenAI-compatible
stream (completions or chat) into what METRICS.md counts: token events and the tokens they carry,
answer and reasoning text, final usage, finish_reason, `[DONE]`, and failures.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

_BOM = b"\xef\xbb\xbf"
_decode = json.JSONDecoder().decode  # json.loads with default options, without its per-call checks


class SSEEvent(NamedTuple):
    """One dispatched event: its data (lines joined by `\\n`), type, last event id and retry."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental parser: `feed` bytes as they arrive, `finish` at the end of the body.

    Line ends may be `\\n`, `\\r\\n` or `\\r`; they are normalised to `\\n` per read so that the
    event boundary is always `\\n\\n` and a whole read can be split in C. A `\\r` at the end of a
    read is a line end already; a `\\n` starting the next read is then its second half and dropped.
    An unfinished event waits in a buffer grown in place and searched only where new bytes arrived,
    so an event of any size cut into any number of reads costs time in proportion to its size.
    """

    __slots__ = ("_buf", "_last_id", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf: bytes | bytearray = b""
        self._skip_lf = False
        self._started = False
        self._last_id: str | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume one read; return the events it completed (possibly none)."""
        if not self._buf and self._started and not self._skip_lf and data[:5] == b"data:" \
                and data.count(b"\n") == 2 and data.endswith(b"\n\n") and b"\r" not in data:
            # The common read: exactly one whole one-line `data:` event and nothing pending.
            value = data[6:-2] if data[5:6] == b" " else data[5:-2]
            return [SSEEvent(value.decode("utf-8", "replace"), "message", self._last_id)]
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self._skip_lf = data[-1] == 0x0D
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._buf
        buf: bytes | bytearray
        if pending:
            # Grown in place and searched only from where the new bytes start (a blank line may
            # straddle the two): not copied and rescanned whole on every read.
            buf = pending if isinstance(pending, bytearray) else bytearray(pending)
            start = len(buf) - 1
            buf += data
            complete = buf.find(b"\n\n", start) >= 0
        else:
            buf = data
            complete = b"\n\n" in data
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf  # could still be the start of a byte order mark
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if not complete:
            self._buf = buf
            return []
        blocks = (bytes(buf) if pending else buf).split(b"\n\n")
        self._buf = blocks.pop()
        parse = self._parse_block
        events = []
        for block in blocks:
            event = parse(block)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[SSEEvent]:
        """End of body: dispatch a last event that was not followed by a blank line."""
        buf, self._buf = bytes(self._buf), b""
        self._skip_lf = False
        if not self._started:
            buf = buf.removeprefix(_BOM)
        buf = buf.rstrip(b"\n")
        if not buf:
            return []
        event = self._parse_block(buf)
        return [] if event is None else [event]

    def _parse_block(self, block: bytes) -> SSEEvent | None:
        # Fast path: nearly every OpenAI event is one `data:` line.
        if block[:5] == b"data:" and b"\n" not in block:
            value = block[5:]
            if value[:1] == b" ":
                value = value[1:]
            return SSEEvent(value.decode("utf-8", "replace"), "message", self._last_id)
        data: list[bytes] = []
        event_type = "message"
        retry: int | None = None
        for line in block.split(b"\n"):
            if not line or line[0] == 0x3A:  # blank line or `:` comment
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event_type = value.decode("utf-8", "replace") or "message"
            elif name == b"id" and b"\x00" not in value:
                self._last_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit():
                retry = int(value)
        if not data:
            return None
        return SSEEvent(b"\n".join(data).decode("utf-8", "replace"), event_type, self._last_id, retry)


class TokenEvent(NamedTuple):
    """What one token event carried: how many tokens, and whether it was reasoning only."""

    tokens: int
    reasoning: bool


_ONE_ANSWER = TokenEvent(1, False)
_ONE_REASONING = TokenEvent(1, True)


class _Malformed(Exception):
    """A chunk of the wrong shape; the message says what was wrong."""


class StreamInterpreter:
    """Folds the events of one OpenAI-compatible stream; one instance per request.

    `feed_event` / `feed_data` / `feed_json` return a `TokenEvent` for a token event and None
    otherwise. After a failure (`error_kind` set) the stream should be abandoned.

    Tokens per event: 1, unless the server puts usage on every chunk (vLLM's
    `continuous_usage_stats`), in which case it is the rise of `usage.completion_tokens` (MTP and
    speculative decoding put several tokens in one chunk). Usage that comes only on the chunk with
    the finish_reason (transformers serve) is final usage, not per-chunk usage.
    """

    __slots__ = (
        "_last_completion",
        "_last_reasoning",
        "completion_tokens",
        "done",
        "error_detail",
        "error_kind",
        "finish_reason",
        "prompt_tokens",
        "reasoning_parts",
        "text_parts",
        "usage_per_chunk",
    )

    def __init__(self) -> None:
        self.text_parts: list[str] = []
        self.reasoning_parts: list[str] = []
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.usage_per_chunk = False
        self.error_kind: str | None = None
        self.error_detail: str | None = None
        self._last_completion = 0
        self._last_reasoning = False

    @property
    def text(self) -> str:
        """The answer text so far."""
        return "".join(self.text_parts)

    @property
    def reasoning_text(self) -> str:
        """The reasoning text so far."""
        return "".join(self.reasoning_parts)

    def feed_event(self, event: SSEEvent) -> TokenEvent | None:
        """Interpret one SSE event (an `event: error` event is a server error)."""
        if event.event == "error":
            self._fail("server_error_event", event.data)
            return None
        return self.feed_data(event.data)

    def feed_data(self, data: str) -> TokenEvent | None:
        """Interpret the data of one event: `[DONE]`, or a JSON chunk."""
        if data == "[DONE]":
            self.done = True
            return None
        try:
            obj = _decode(data)
        except ValueError:
            if data.strip() == "[DONE]":
                self.done = True
            else:
                self._fail("malformed", f"not JSON: {data[:200]!r}")
            return None
        except RecursionError:
            self._fail("malformed", f"JSON nested too deeply to read: {data[:200]!r}")
            return None
        return self.feed_json(obj)

    def feed_json(self, obj: Any) -> TokenEvent | None:
        """Interpret one decoded chunk."""
        try:
            if not isinstance(obj, dict):
                raise _Malformed(f"chunk is not an object: {str(obj)[:200]}")
            error = obj.get("error")
            if error or obj.get("object") == "error":
                self._fail("server_error_event", _error_message(error if error else obj))
                return None
            usage = obj.get("usage")
            completion = None if usage is None else self._take_usage(usage)
            choices = obj.get("choices")
            if not choices:
                if choices is not None and not isinstance(choices, list):
                    raise _Malformed(f"choices is not a list: {str(choices)[:200]}")
                if completion is not None:
                    self._last_completion = completion
                return None  # usage-only (or empty) chunk: never a token event
            if not isinstance(choices, list) or not isinstance(choices[0], dict):
                raise _Malformed(f"bad choices: {str(choices)[:200]}")
            choice = choices[0]
            finish = choice.get("finish_reason")
            if finish:
                self.finish_reason = str(finish)
            answer, reasoning = self._take_text(choice)
        except _Malformed as exc:
            self._fail("malformed", str(exc))
            return None
        if completion is None and answer:  # the common chunk: one answer token, no usage
            self._last_reasoning = False
            return _ONE_ANSWER
        return self._token_event(answer, reasoning, self._usage_rise(completion, finish))

    def _take_usage(self, usage: Any) -> int | None:
        """Record the chunk's usage; its completion_tokens (None when it has none)."""
        if usage is None:
            return None
        if not isinstance(usage, dict):
            raise _Malformed(f"usage is not an object: {str(usage)[:200]}")
        prompt = usage.get("prompt_tokens")
        if _is_count(prompt):
            self.prompt_tokens = prompt
        completion = usage.get("completion_tokens")
        if not _is_count(completion):
            return None
        self.completion_tokens = completion
        return completion

    def _take_text(self, choice: dict[str, Any]) -> tuple[bool, bool]:
        """Keep the choice's answer and reasoning text: (carried an answer, carried reasoning).
        Tool calls count as answer."""
        delta = choice.get("delta")
        if delta is None:  # completions
            text = choice.get("text")
            if not text:
                return False, False
            if not isinstance(text, str):
                raise _Malformed(f"text is not a string: {str(text)[:200]}")
            self.text_parts.append(text)
            return True, False
        if not isinstance(delta, dict):
            raise _Malformed(f"delta is not an object: {str(delta)[:200]}")
        answer = reasoning = False
        content = delta.get("content")
        if content:
            if not isinstance(content, str):
                raise _Malformed(f"content is not a string: {str(content)[:200]}")
            self.text_parts.append(content)
            answer = True
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            if not isinstance(thought, str):
                raise _Malformed(f"reasoning is not a string: {str(thought)[:200]}")
            self.reasoning_parts.append(thought)
            reasoning = True
        if delta.get("tool_calls"):
            answer = True
        return answer, reasoning

    def _usage_rise(self, completion: int | None, finish: Any) -> int:
        """Tokens this chunk added by per-chunk usage (0 without it)."""
        if completion is None:
            return 0
        if not self.usage_per_chunk and not finish:
            self.usage_per_chunk = True  # usage on a chunk that is not the last one
        rise = completion - self._last_completion if self.usage_per_chunk else 0
        self._last_completion = completion
        return rise

    def _token_event(self, answer: bool, reasoning: bool, rise: int) -> TokenEvent | None:
        """The token event of a chunk (None when it carried no token) and its channel."""
        if answer:
            is_reasoning = False
        elif reasoning:
            is_reasoning = True
        elif rise > 0:
            # Tokens with no text yet (e.g. half of a UTF-8 character): same channel as before.
            is_reasoning = self._last_reasoning
        else:
            return None
        self._last_reasoning = is_reasoning
        if rise <= 1:
            return _ONE_REASONING if is_reasoning else _ONE_ANSWER
        return TokenEvent(rise, is_reasoning)

    def _fail(self, kind: str, detail: str) -> None:
        if self.error_kind is None:
            self.error_kind = kind
            self.error_detail = detail[:500]


def _is_count(value: Any) -> bool:
    """A token count: an int (JSON `true` decodes to a bool, which Python counts as an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        if message:
            code = error.get("code") or error.get("type")
            return f"{code}: {message}" if code else str(message)
        return json.dumps(error)[:500]
    return str(error)[:500]
