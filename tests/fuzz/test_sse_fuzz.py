"""Fuzzing the SSE parser and the OpenAI chunk interpreter.

Their contract: `SSEParser` takes any bytes cut at any points and gives the same events however the
body was cut; `StreamInterpreter` never raises: a bad event becomes `error_kind`/`error_detail`
(`malformed` or `server_error_event`), and what it returns is None or a well-formed
`TokenEvent`. A valid stream, however cut and whatever its line ends, is read exactly.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from hypothesis import strategies as st

from pytest_deepseek.serving.sse import SSEEvent, SSEParser, StreamInterpreter, TokenEvent

from .mutate import corrupted_bytes, cut, json_values, mutated_document, pick, split_points
from .target import Target

ERROR_KINDS = (None, "malformed", "server_error_event")
# Pieces of SSE and of OpenAI chunks: random bytes rarely spell a field name.
SSE_TOKENS = (
    b"data:", b"data: ", b"event: ", b"event: error", b"id: ", b"retry: ", b":", b" ", b"\n", b"\r", b"\r\n",
    b"\n\n", b"\xef\xbb\xbf", b"\xef", b"[DONE]", b"\x00", b"\xff", b"1", b"{", b"}", b'"', b"[", b"]",
    b'{"choices":[{"delta":{"content":"a"}}]}', b'{"choices":[{"text":"a","finish_reason":"stop"}]}',
    b'{"usage":{"completion_tokens":3}}', b'{"error":{"message":"x"}}', b'"choices"', b'"delta"', b'"usage"',
)
CHUNK_FIELDS = frozenset((
    "choices", "delta", "content", "text", "reasoning_content", "reasoning", "tool_calls", "usage",
    "completion_tokens", "prompt_tokens", "finish_reason", "error", "object", "message",
))
JUNK_EVENTS = (
    b"data: [DONE]", b"event: error\ndata: overloaded", b": keep-alive", b"data:", b"id: 7\nretry: 10",
    b'data: {"error": {"message": "overloaded", "code": 503}}', b'data: {"object": "error", "message": "x"}',
    b'data: {"choices":', b"data: null", b"data: []", b"event: ping", b"data: " + b"[" * 3000 + b"]" * 3000,
)


def parse(pieces: list[bytes]) -> list[SSEEvent]:
    """The events of a body read as `pieces`."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.finish()


class Outcome(NamedTuple):
    """What the interpreter made of a stream."""

    interp: StreamInterpreter
    tokens: list[TokenEvent]


def interpret(events: list[SSEEvent]) -> Outcome:
    """Feed every event (past a failure too: the interpreter must survive it) and check each answer."""
    interp = StreamInterpreter()
    tokens = []
    for event in events:
        token = interp.feed_event(event)
        assert_token(token)
        if token is not None:
            tokens.append(token)
    assert_state(interp)
    return Outcome(interp, tokens)


def assert_token(token: TokenEvent | None) -> None:
    if token is not None:
        assert isinstance(token, TokenEvent)
        assert type(token.tokens) is int and token.tokens >= 1, token
        assert type(token.reasoning) is bool, token


def assert_state(interp: StreamInterpreter) -> None:
    assert isinstance(interp.text, str) and isinstance(interp.reasoning_text, str)
    assert interp.error_kind in ERROR_KINDS, interp.error_kind
    assert (interp.error_kind is None) == (interp.error_detail is None)
    assert interp.error_detail is None or (isinstance(interp.error_detail, str) and len(interp.error_detail) <= 500)
    for count in (interp.prompt_tokens, interp.completion_tokens):
        assert count is None or type(count) is int, f"a token count of type {type(count).__name__}: {count!r}"
    assert interp.finish_reason is None or isinstance(interp.finish_reason, str)


# -- fully random input ---------------------------------------------------------------------------------


def check_parser_bytes(example: tuple[bytes, list[int]]) -> None:
    """Any body, cut anywhere: no exception, and the same events as the body read in one piece."""
    body, points = example
    whole = parse([body])
    assert parse(cut(body, [min(p, len(body)) for p in points])) == whole
    for event in whole:
        assert isinstance(event.data, str) and isinstance(event.event, str)
        assert event.retry is None or (type(event.retry) is int and event.retry >= 0)
    interpret(whole)


def check_interpreter_values(example: list[Any]) -> None:
    """Any decoded JSON values or data strings, in any order: records, never exceptions."""
    interp = StreamInterpreter()
    for value in example:
        if isinstance(value, SSEEvent):
            token = interp.feed_event(value)
        elif isinstance(value, str):
            token = interp.feed_data(value)
        else:
            token = interp.feed_json(value)
        assert_token(token)
    assert_state(interp)


def _bodies() -> st.SearchStrategy[bytes]:
    soup = st.lists(st.sampled_from(SSE_TOKENS) | st.binary(max_size=6), max_size=40).map(b"".join)
    return st.binary(max_size=400) | soup


def _random_bodies() -> st.SearchStrategy[tuple[bytes, list[int]]]:
    return _bodies().flatmap(lambda body: st.tuples(st.just(body), split_points(len(body))))


def _chunk_like() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-3, 10) | st.text(max_size=4)
    delta = st.dictionaries(st.sampled_from(("content", "reasoning_content", "reasoning", "tool_calls", "role")),
                            scalars | json_values(), max_size=3)
    choice = st.dictionaries(st.sampled_from(("delta", "text", "finish_reason", "index")),
                             delta | scalars | json_values(), max_size=3)
    usage = st.dictionaries(st.sampled_from(("prompt_tokens", "completion_tokens")), scalars | json_values(),
                            max_size=2)
    return st.dictionaries(
        st.sampled_from(("choices", "usage", "error", "object", "id")),
        st.lists(choice, max_size=2) | usage | choice | json_values(),
        max_size=3,
    )


def _interpreter_inputs() -> st.SearchStrategy[list[Any]]:
    event = st.builds(SSEEvent, st.text(max_size=30), st.sampled_from(("message", "error", "ping")))
    text = st.text(max_size=40) | pick(("[DONE]", " [DONE] ", "[" * 3000, "{" * 3000, "NaN", "1e999"))
    return st.lists(_chunk_like() | json_values() | text | event, max_size=8)


# -- structure-aware input: valid streams, then broken ------------------------------------------------


class Stream(NamedTuple):
    """A stream body and what a correct reading of it gives (`expected` is None once it was broken)."""

    body: bytes
    points: list[int]
    expected: dict[str, Any] | None


def _chunk(api: str, text: str, reasoning: bool, finish: str | None, usage: dict[str, int] | None) -> dict[str, Any]:
    if api == "completions":
        choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        obj = "text_completion"
    else:
        delta = {"reasoning_content": text} if reasoning else {"content": text}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion.chunk"
    chunk: dict[str, Any] = {"id": "cmpl-1", "object": obj, "created": 1, "model": "m", "choices": [choice]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


@st.composite
def openai_streams(draw: st.DrawFn) -> Stream:
    """A valid completions or chat stream (reasoning, per-chunk usage optional), maybe broken."""
    api = draw(st.sampled_from(("completions", "chat")))
    pieces = draw(st.lists(st.tuples(st.text(min_size=1, max_size=4), st.booleans(), st.integers(1, 3)), max_size=6))
    per_chunk = draw(st.booleans())
    finish = draw(st.sampled_from(("stop", "length")))
    prompt, done_tokens = 7, 0
    chunks: list[dict[str, Any]] = [_chunk(api, "", False, None, {"prompt_tokens": prompt, "completion_tokens": 0}
                                           if per_chunk else None)]
    answer, thought = "", ""
    for text, reasoning, rise in pieces:
        reasoning = reasoning and api == "chat"
        done_tokens += rise if per_chunk else 1
        usage = {"prompt_tokens": prompt, "completion_tokens": done_tokens} if per_chunk else None
        chunks.append(_chunk(api, text, reasoning, None, usage))
        thought, answer = (thought + text, answer) if reasoning else (thought, answer + text)
    chunks.append(_chunk(api, "", False, finish, None))
    chunks.append({"id": "cmpl-1", "object": "x", "created": 1, "model": "m", "choices": [],
                   "usage": {"prompt_tokens": prompt, "completion_tokens": done_tokens}})
    events = [b"data: " + json.dumps(c, ensure_ascii=draw(st.booleans())).encode() for c in chunks]
    events.append(b"data: [DONE]")
    broken = draw(st.booleans())
    if broken:
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(events) - 1))
            if draw(st.booleans()):
                seed = chunks[i] if i < len(chunks) else "[DONE]"
                events[i] = b"data: " + draw(mutated_document(seed, CHUNK_FIELDS, max_edits=2)).encode()
            else:
                events.insert(i, draw(pick(JUNK_EVENTS)))
    end = draw(st.sampled_from((b"\n", b"\r\n", b"\r")))
    body = b"".join(e.replace(b"\n", end) + end + end for e in events)
    if draw(st.booleans()):
        body = b"\xef\xbb\xbf" + body
    if broken and draw(st.booleans()):
        body = draw(corrupted_bytes(body))
    expected = None if broken else {
        "tokens": done_tokens, "text": answer, "reasoning": thought, "finish": finish,
        "completion_tokens": done_tokens, "prompt_tokens": prompt,
    }
    return Stream(body, draw(split_points(len(body))), expected)


def check_stream(stream: Stream) -> None:
    """A valid stream is read exactly however it is cut; a broken one gives records, not exceptions."""
    whole = parse([stream.body])
    assert parse(cut(stream.body, stream.points)) == whole
    outcome = interpret(whole)
    if stream.expected is not None:
        interp, expected = outcome.interp, stream.expected
        assert interp.error_kind is None, interp.error_detail
        assert interp.done
        assert sum(t.tokens for t in outcome.tokens) == expected["tokens"]
        assert (interp.text, interp.reasoning_text) == (expected["text"], expected["reasoning"])
        assert interp.finish_reason == expected["finish"]
        assert (interp.prompt_tokens, interp.completion_tokens) == (expected["prompt_tokens"],
                                                                    expected["completion_tokens"])


TARGETS = [
    Target("sse.parser.random-bytes", _random_bodies(), check_parser_bytes),
    Target("sse.interpreter.random-values", _interpreter_inputs(), check_interpreter_values),
    Target("sse.stream.mutated-openai", openai_streams(), check_stream),
]


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_never_crashes(target: Target) -> None:
    target.run()
