"""SSE parser and OpenAI chunk interpreter."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from pytest_deepseek.serving.sse import SSEEvent, SSEParser, StreamInterpreter, TokenEvent


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.finish()


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def sse(*objects: object) -> bytes:
    """An OpenAI-style body: one `data: <json>` event per object, a string is sent as is."""
    out = b""
    for obj in objects:
        payload = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        out += b"data: " + payload.encode() + b"\n\n"
    return out


def chat_chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def interpret(body: bytes, chunks: list[bytes] | None = None) -> tuple[StreamInterpreter, list[TokenEvent]]:
    interp = StreamInterpreter()
    tokens = []
    for event in parse_all(chunks if chunks is not None else [body]):
        token = interp.feed_event(event)
        if token is not None:
            tokens.append(token)
    return interp, tokens


# A realistic vLLM chat stream: role chunk with empty content, content chunks (one of them a
# multi-byte character), the finish chunk, a usage-only chunk with `choices: []`, then [DONE].
VLLM_STREAM = sse(
    chat_chunk({"role": "assistant", "content": ""}),
    chat_chunk({"content": "Hello"}),
    chat_chunk({"content": " wörld"}),
    chat_chunk({"content": " 你好"}),
    chat_chunk({"content": "!"}, finish="length"),
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
     "usage": usage(12, 5)},
    "[DONE]",
)


# --- SSEParser -------------------------------------------------------------------------------


def test_single_and_several_events_per_read() -> None:
    events = parse_all([b"data: a\n\ndata: b\n\ndata: c\n\n"])
    assert [e.data for e in events] == ["a", "b", "c"]
    assert all(e.event == "message" for e in events)


def test_event_split_across_reads_is_dispatched_once_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: hel") == []
    assert parser.feed(b"lo\n") == []
    assert parser.feed(b"\n") == [SSEEvent("hello")]
    assert parser.finish() == []


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    body = b"data: one" + eol + eol + b"event: x" + eol + b"data: two" + eol + b"data: 2b" + eol + eol
    for chunks in ([body], byte_by_byte(body)):
        events = parse_all(chunks)
        assert events == [SSEEvent("one"), SSEEvent("two\n2b", "x")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("a")]  # \r\n ends the line, \r is the blank line
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("b")]


def test_lone_cr_event_is_dispatched_without_waiting_for_next_read() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == [SSEEvent("a")]


def test_comments_data_without_space_and_fields() -> None:
    body = b": keep-alive\n\n:another comment\ndata:nospace\nid: 7\nretry: 1500\n\ndata\n\n"
    events = parse_all([body])
    assert events == [SSEEvent("nospace", "message", "7", 1500), SSEEvent("", "message", "7")]


def test_only_one_leading_space_is_removed() -> None:
    assert parse_all([b"data:  two spaces\n\n"]) == [SSEEvent(" two spaces")]


def test_event_without_data_is_not_dispatched() -> None:
    assert parse_all([b"event: ping\n\n: c\n\nid: 3\n\n"]) == []


def test_extra_blank_lines_between_events() -> None:
    assert [e.data for e in parse_all([b"\n\ndata: a\n\n\n\n\ndata: b\n\n"])] == ["a", "b"]


def test_last_event_without_blank_line_is_flushed_by_finish() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: last") == [SSEEvent("a")]
    assert parser.finish() == [SSEEvent("last")]
    parser = SSEParser()
    parser.feed(b"data: last\r\n")
    assert parser.finish() == [SSEEvent("last")]


def test_multibyte_character_split_across_reads() -> None:
    body = "data: 你好 wörld 🙂\n\n".encode()
    cut = body.index("好".encode()) + 1  # inside the 3-byte character
    assert parse_all([body[:cut], body[cut:]]) == [SSEEvent("你好 wörld 🙂")]
    assert parse_all(byte_by_byte(body)) == [SSEEvent("你好 wörld 🙂")]


def test_byte_order_mark_is_ignored() -> None:
    body = b"\xef\xbb\xbfdata: a\n\n"
    assert parse_all([body]) == [SSEEvent("a")]
    assert parse_all(byte_by_byte(body)) == [SSEEvent("a")]


def test_random_split_points_give_identical_events() -> None:
    rng = random.Random(1234)
    mixed = (
        VLLM_STREAM.replace(b"\n", b"\r\n")
        + b": comment\r\rdata: x\ndata: y\r\n\r\nevent: e\nid: 9\ndata: z\n\ndata: tail"
    )
    for body in (VLLM_STREAM, mixed):
        expected = parse_all([body])
        assert len(expected) >= 7
        for _ in range(300):
            cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 40)))
            chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
            assert parse_all(chunks) == expected


# --- StreamInterpreter -------------------------------------------------------------------------


def test_vllm_stream_byte_by_byte() -> None:
    interp, tokens = interpret(VLLM_STREAM, byte_by_byte(VLLM_STREAM))
    assert tokens == [TokenEvent(1, False)] * 4  # the role chunk and usage chunk are not token events
    assert interp.text == "Hello wörld 你好!"
    assert interp.reasoning_text == ""
    assert (interp.prompt_tokens, interp.completion_tokens) == (12, 5)
    assert interp.finish_reason == "length"
    assert interp.done
    assert not interp.usage_per_chunk
    assert interp.error_kind is None


def test_completions_text_chunks() -> None:
    def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
        return {"id": "cmpl-1", "object": "text_completion", "choices": [
            {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

    body = sse(chunk("a"), chunk(""), chunk("b"), chunk("c", "stop"),
               {"id": "cmpl-1", "choices": [], "usage": usage(3, 4)}, "[DONE]")
    interp, tokens = interpret(body)
    assert len(tokens) == 3
    assert interp.text == "abc"
    assert interp.completion_tokens == 4
    assert interp.finish_reason == "stop"


def test_transformers_serve_style_no_done_usage_on_finish_chunk() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": "Hi"}),
        chat_chunk({"content": " there"}),
        chat_chunk({"content": "."}, finish="length", usage=usage(8, 3)),
    )
    interp, tokens = interpret(body, byte_by_byte(body))
    assert tokens == [TokenEvent(1, False)] * 3
    assert not interp.done
    assert interp.finish_reason == "length"
    assert (interp.prompt_tokens, interp.completion_tokens) == (8, 3)
    assert not interp.usage_per_chunk  # usage only on the last chunk is final usage


def test_transformers_serve_single_token_finish_chunk_without_text() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": "Hi"}),
        chat_chunk({}, finish="stop", usage=usage(8, 2)),
    )
    interp, tokens = interpret(body)
    assert tokens == [TokenEvent(1, False)]
    assert interp.completion_tokens == 2


def test_continuous_usage_mtp_two_tokens_per_chunk() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": ""}, usage=usage(10, 0)),
        chat_chunk({"content": "ab"}, usage=usage(10, 2)),
        chat_chunk({"content": "cd"}, usage=usage(10, 4)),
        chat_chunk({"content": "e"}, usage=usage(10, 5)),
        chat_chunk({"content": "fg"}, finish="length", usage=usage(10, 7)),
        {"choices": [], "usage": usage(10, 7)},
        "[DONE]",
    )
    interp, tokens = interpret(body, byte_by_byte(body))
    assert [t.tokens for t in tokens] == [2, 2, 1, 2]
    assert interp.usage_per_chunk
    assert interp.completion_tokens == 7
    assert interp.done


def test_continuous_usage_rise_without_text_is_a_token_event() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": ""}, usage=usage(10, 0)),
        chat_chunk({"content": "a"}, usage=usage(10, 1)),
        chat_chunk({"content": ""}, usage=usage(10, 2)),  # e.g. half of a multi-byte character
        chat_chunk({"content": "好"}, usage=usage(10, 3)),
    )
    _, tokens = interpret(body)
    assert [t.tokens for t in tokens] == [1, 1, 1]


def test_continuous_usage_detected_when_role_chunk_has_none() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"content": "abc"}, usage=usage(10, 3)),
        chat_chunk({"content": "d"}, usage=usage(10, 4)),
    )
    interp, tokens = interpret(body)
    assert interp.usage_per_chunk
    assert [t.tokens for t in tokens] == [3, 1]


def test_reasoning_deltas_both_field_names() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"reasoning_content": "Let me"}),
        chat_chunk({"reasoning": " think"}),
        chat_chunk({"content": "42", "reasoning_content": None}),
        chat_chunk({"content": "."}, finish="stop"),
        "[DONE]",
    )
    interp, tokens = interpret(body)
    assert [t.reasoning for t in tokens] == [True, True, False, False]
    assert interp.reasoning_text == "Let me think"
    assert interp.text == "42."
    assert interp.completion_tokens is None


def test_tool_calls_are_answer_token_events() -> None:
    call = [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    _, tokens = interpret(sse(chat_chunk({"role": "assistant", "tool_calls": call})))
    assert tokens == [TokenEvent(1, False)]


def test_error_event_mid_stream() -> None:
    body = sse(
        chat_chunk({"content": "a"}),
        {"error": {"object": "error", "message": "engine died", "type": "InternalServerError", "code": 500}},
        chat_chunk({"content": "b"}),
    )
    interp, tokens = interpret(body)
    assert interp.error_kind == "server_error_event"
    assert "engine died" in (interp.error_detail or "")
    assert len(tokens) == 2  # the interpreter reports; the client stops reading at the error


def test_sse_error_event_type() -> None:
    interp = StreamInterpreter()
    assert interp.feed_event(SSEEvent('{"message": "overloaded"}', "error")) is None
    assert interp.error_kind == "server_error_event"


@pytest.mark.parametrize("data", ['{"choices": [{"delta": {"content": "a"}', "hello", "[DONE", "42",
                                  '{"choices": "x"}', '{"choices": [{"delta": "x"}]}', '{"usage": 3}',
                                  '{"choices": [{"delta": {"content": ["a"]}}]}',
                                  '{"choices": [{"delta": {"reasoning_content": 7}}]}',
                                  '{"choices": [{"text": {"a": 1}}]}', '{"choices": [7]}'])
def test_malformed_events(data: str) -> None:
    interp = StreamInterpreter()
    assert interp.feed_data(data) is None
    assert interp.error_kind == "malformed"
    assert interp.error_detail


def test_first_error_is_kept() -> None:
    interp = StreamInterpreter()
    interp.feed_data("nope")
    interp.feed_data('{"error": "later"}')
    assert interp.error_kind == "malformed"


def test_role_only_and_empty_chunks_are_not_token_events() -> None:
    interp = StreamInterpreter()
    assert interp.feed_json(chat_chunk({"role": "assistant"})) is None
    assert interp.feed_json(chat_chunk({"role": "assistant", "content": ""})) is None
    assert interp.feed_json({"choices": [], "usage": usage(1, 0)}) is None
    assert interp.feed_json({"choices": []}) is None
    assert interp.feed_data("[DONE]") is None
    assert interp.done and interp.error_kind is None


@pytest.mark.parametrize("read", [
    b'data: {"a": 1}\n\n',
    b'data:{"a": 1}\n\n',
    b"data:\n\n",
    b"data:  two spaces\n\n",
    b"data: caf\xc3\xa9 \xff\n\n",
    b"data: a\r\n\r\n",
    b"data: a\ndata: b\n\n",
    b"data: a\n\ndata: b\n\n",
    b"data: a\n\n\n",
])
def test_a_read_holding_one_event_parses_as_it_would_byte_by_byte(read: bytes) -> None:
    warm = b"id: 7\n\n"  # the first read is never the one-event case; an id must carry over
    whole = SSEParser()
    assert whole.feed(warm) == []
    assert whole.feed(read) + whole.finish() == parse_all(byte_by_byte(warm + read))
