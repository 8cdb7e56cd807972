"""Streams that fuzzing (tests/fuzz/test_sse_fuzz.py) found the parser and the interpreter mishandling."""

from __future__ import annotations

import time

from pytest_deepseek.serving.sse import SSEParser, StreamInterpreter


def test_json_nested_too_deeply_is_malformed_not_an_exception() -> None:
    parser = SSEParser()
    interp = StreamInterpreter()
    for event in parser.feed(b"data: " + b"[" * 100_000 + b"\n\n") + parser.finish():
        assert interp.feed_event(event) is None
    assert interp.error_kind == "malformed"
    assert interp.error_detail is not None and interp.error_detail.startswith("JSON nested too deeply to read")


def test_true_and_false_are_not_token_counts() -> None:
    interp = StreamInterpreter()
    interp.feed_json({"choices": [], "usage": {"prompt_tokens": False, "completion_tokens": True}})
    assert (interp.prompt_tokens, interp.completion_tokens) == (None, None)
    interp.feed_json({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    assert (interp.prompt_tokens, interp.completion_tokens) == (7, 3)
    assert interp.error_kind is None


def test_a_long_event_in_many_reads_is_parsed_in_linear_time() -> None:
    body = b"data: " + b"x" * 8_000_000 + b"\n\n"
    parser = SSEParser()
    start = time.perf_counter()
    events = [event for i in range(0, len(body), 1024) for event in parser.feed(body[i : i + 1024])]
    events += parser.finish()
    assert time.perf_counter() - start < 5  # about 0.05 s; the buffer copied and rescanned per read took minutes
    assert len(events) == 1 and len(events[0].data) == 8_000_000
