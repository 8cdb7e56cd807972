"""Plain data types that flow through the serving pipeline.

`RequestSpec` is what the load generator asks the client to send; `RequestRecord` is what the
client returns for every request, success or not (a request never raises). Timestamps are
`time.perf_counter_ns()` values taken in the process that owns the socket; on Linux this clock is
CLOCK_MONOTONIC, so the simulator's ground truth (another process on the same machine) is on the
same time axis.
"""

from __future__ import annotations

from array import array
from collections.abc import MutableSequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

ApiKind = Literal["completions", "chat"]

# Error kinds a failed request may carry (METRICS.md "success"); each with what makes it.
ERROR_KINDS = (
    "http_4xx",  # a non-200 answer 400-499 other than 429 (`status` holds the code)
    "rate_limited",  # HTTP 429; its Retry-After in `retry_after_s` and `error_detail`
    "http_5xx",  # HTTP 500-599, and any other non-200 status
    "refused",  # the TCP connection could not be made (refused, unreachable)
    "connect_timeout",  # connecting took longer than the connect deadline
    "first_byte_timeout",  # no byte of the response body within the first-byte deadline after t_send
    "stall",  # after the first body byte, no byte for longer than the stall deadline
    "timeout",  # the whole request took longer than the total deadline
    "reset",  # the connection dropped, before the headers or mid-stream
    "malformed",  # an SSE data line that is not JSON, or JSON of the wrong shape
    "server_error_event",  # an `{"error": ...}` event inside a 200 stream
    "empty_stream",  # 200 and a clean end, but no token event at all
    "truncated",  # the stream ended without [DONE] and without a finish_reason
    "client",  # anything else raised inside the client (a bug: kept, never hidden)
)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long one request may take, in seconds, phase by phase (each breach has its error kind).

    `connect_s`: to open the TCP connection (`connect_timeout`); `first_byte_s`: from `t_send` to
    the first byte of the response body, headers alone do not count (`first_byte_timeout`);
    `stall_s`: between two body bytes once the first arrived (`stall`); `total_s`: from `t_send`
    to the end (`timeout`). The defaults suit 32k-token reasoning outputs on a loaded server.
    """

    connect_s: float = 30.0
    first_byte_s: float = 900.0
    stall_s: float = 300.0
    total_s: float = 3600.0

    def capped(self, limit_s: float) -> "Deadlines":
        """These deadlines, none longer than `limit_s`."""
        return Deadlines(min(self.connect_s, limit_s), min(self.first_byte_s, limit_s), min(self.stall_s, limit_s),
                         min(self.total_s, limit_s))

    def to_json(self) -> dict[str, float]:
        """Plain JSON."""
        return {name: getattr(self, name) for name in _DEADLINE_FIELDS}

    @classmethod
    def from_json(cls, data: Any) -> "Deadlines":
        """Inverse of `to_json` (missing fields take the defaults)."""
        return cls(**{name: float(data[name]) for name in _DEADLINE_FIELDS if name in data})


_DEADLINE_FIELDS = ("connect_s", "first_byte_s", "stall_s", "total_s")


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request to send, fully decided before the run starts (so runs are reproducible)."""

    index: int  # position in the prompt set; unique inside a run
    api: ApiKind
    model: str
    prompt: str | None = None  # completions
    messages: tuple[dict[str, str], ...] | None = None  # chat
    input_len: int | None = None  # the target prompt length in tokens, when the workload fixed it
    max_tokens: int = 128
    force_output_len: bool = True  # send ignore_eos + min_tokens = max_tokens
    warmup: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestRecord:
    """Everything measured about one request. Times are perf_counter_ns; durations are derived."""

    index: int
    request_id: str  # sent as the `x-request-id` header; the simulator logs it with its ground truth
    api: ApiKind
    warmup: bool = False
    input_len: int | None = None  # target prompt tokens
    max_tokens: int = 0
    forced: bool = False  # ignore_eos/min_tokens were sent
    t_scheduled: int | None = None  # open loop: when the schedule wanted it sent
    t_queued: int = 0  # when the request was ready to go (before waiting for a slot)
    t_send: int = 0  # just before the request bytes are written
    t_headers: int | None = None  # response headers received
    t_first_token: int | None = None  # first token event, any channel
    t_first_answer: int | None = None  # first non-reasoning token event
    t_last_token: int | None = None  # last token event
    t_end: int | None = None  # stream closed / [DONE] seen
    # One entry per token event, in arrival order: its time and how many tokens it carried. Lists
    # while the stream is read; typed arrays once the record is kept for judging (`compact`).
    event_times: MutableSequence[int] = field(default_factory=list)
    event_tokens: MutableSequence[int] = field(default_factory=list)
    event_reasoning: MutableSequence[bool] = field(default_factory=list)  # true when the event was reasoning only
    prompt_tokens: int | None = None  # final usage.prompt_tokens
    completion_tokens: int | None = None  # final usage.completion_tokens (N)
    usage_per_chunk: bool = False  # the server sent usage on every chunk (continuous usage stats)
    approximate: bool = False  # N came from re-tokenization, not from the server's usage
    text: str = ""  # generated answer text
    reasoning_text: str = ""  # generated reasoning text
    finish_reason: str | None = None
    done_seen: bool = False  # `data: [DONE]` arrived
    status: int | None = None  # HTTP status
    success: bool = False
    error_kind: str | None = None
    error_detail: str | None = None
    retry_after_s: int | None = None  # rate_limited: the server's Retry-After, in seconds
    # The endpoint it was sent to, numbered as `ServingTarget.endpoint_urls()` (replicas, then URLs
    # only woken up); None when the target has one URL (and then not written to records.jsonl).
    endpoint: int | None = None

    @property
    def queue_wait_ns(self) -> int:
        """Time spent waiting for a concurrency slot before `t_send`."""
        return max(0, self.t_send - self.t_queued) if self.t_send else 0

    @property
    def n_tokens(self) -> int:
        """Output tokens N: usage when the server gave it, else the sum over token events."""
        if self.completion_tokens is not None:
            return self.completion_tokens
        return sum(self.event_tokens)

    def to_json_dict(self) -> dict[str, Any]:
        """A plain-JSON form for `records.jsonl` (lossless: `from_json_dict` restores it).

        Shallow: every field is already a JSON type (no floats, so no NaN), and this runs on the
        event loop once per finished request, where a deep copy of long token lists would cost;
        only a compacted record's arrays become lists.
        """
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        if self.endpoint is None:
            del data["endpoint"]
        if isinstance(self.event_times, array):
            data["event_times"] = self.event_times.tolist()
            data["event_tokens"] = list(self.event_tokens)
            data["event_reasoning"] = [bool(flag) for flag in self.event_reasoning]
        return data

    def compact(self) -> None:
        """Keep the token events in typed arrays: 13 bytes per event instead of about 56, and three
        fewer objects for the garbage collector to walk. A long run holds every record until it is
        judged; as lists, a full collection over them paused the event loop for seconds and every
        stream's timing with it. Same values: the metrics read arrays as they read lists."""
        if isinstance(self.event_times, array):
            return
        self.event_times = array("q", self.event_times)
        self.event_tokens = array("i", self.event_tokens)
        self.event_reasoning = array("b", self.event_reasoning)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> "RequestRecord":
        """Rebuild a record written by `to_json_dict` (a field added since then takes its default)."""
        return cls(**data)


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))

LoadMode = Literal["closed", "open", "batch"]


@dataclass(slots=True)
class RunTimeline:
    """Phase boundaries of one measured run (perf_counter_ns), kept by the load generator.

    The steady-state window is [t_load_reached, t_drain_start]: from the moment every concurrency
    slot is busy (closed loop) or the rate schedule is under way (open loop) to the moment the first
    slot can no longer be refilled because the prompt set or the duration ran out.
    """

    mode: LoadMode
    t_start: int  # first measured t_send (warmup excluded)
    t_load_reached: int | None = None
    t_drain_start: int | None = None
    t_end: int = 0  # last token event of the measured phase (or last end of any request)
    target_concurrency: int | None = None
    target_rate: float | None = None  # requests/s; inf means all at once
    peak_concurrency: int = 0
