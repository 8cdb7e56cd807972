"""One request's output: turns the engine's per-step token counts into bytes on the socket.

Also keeps the request's ground truth (emission times and token counts) and feeds the counters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .http import Connection
from .metrics import SimMetrics
from .truth import TruthRecord
from .wire import DONE, ChunkTemplate, error_event, full_response, json_text, usage_json

BreakKind = Literal["midstream_close", "error_event"]


@dataclass
class StreamOptions:
    """How the client asked to be answered."""

    stream: bool
    include_usage: bool = False
    continuous_usage: bool = False  # usage on every chunk (only with include_usage, as vLLM)


class OutputSink:
    """Receives token counts from the engine loop and writes the request's chunks."""

    def __init__(self, *, conn: Connection, template: ChunkTemplate, pieces: list[str], n_reasoning: int,
                 finish_reason: str, options: StreamOptions, truth: TruthRecord, metrics: SimMetrics,
                 on_done: Callable[[TruthRecord], None], response_id: str, model: str, created: int,
                 break_after: int = 0, break_kind: BreakKind | None = None) -> None:
        self.conn = conn
        self.template = template
        self.pieces = pieces
        self.n_reasoning = n_reasoning
        self.finish_reason = finish_reason
        self.options = options
        self.truth = truth
        self.metrics = metrics
        self.on_done = on_done
        self.response_id = response_id
        self.model = model
        self.created = created
        self.break_after = break_after
        self.break_kind = break_kind
        self.emitted = 0
        self.done = False
        self.abort_engine: Callable[[], None] = lambda: None  # set once the engine accepted the sequence
        self._chat = template.api == "chat"

    # engine callback ----------------------------------------------------------------------------
    def on_tokens(self, n: int, finished: bool) -> None:
        """Emit the next `n` tokens; `finished` marks the sequence's last step."""
        if self.done:
            return
        pos, new = self.emitted, self.emitted + n
        if pos == 0:
            self.metrics.prompt_tokens += self.truth.prompt_tokens
        breaking = self.break_kind is not None and new >= self.break_after
        if self.options.stream:
            self._emit_stream(pos, new, finished and not breaking)
        elif finished and not breaking:
            self._emit_whole(new)
        self.emitted = new
        self.metrics.generation_tokens += n
        if breaking:
            self._break()
        elif finished:
            self._complete(self.finish_reason)

    def on_client_lost(self) -> None:
        """The client closed the connection before the end."""
        if not self.done:
            self.abort_engine()
            self._end(error="client_disconnect")

    # writing --------------------------------------------------------------------------------------
    def _events(self, pos: int, new: int) -> list[tuple[bytes, bool, int]]:
        """(JSON text, reasoning?, tokens) of the SSE events carrying pieces [pos, new)."""
        r = self.n_reasoning
        pieces = self.pieces
        if self._chat and pos < r < new:
            return [(json_text("".join(pieces[pos:r])), True, r - pos),
                    (json_text("".join(pieces[r:new])), False, new - r)]
        return [(json_text("".join(pieces[pos:new])), self._chat and new <= r, new - pos)]

    def _emit_stream(self, pos: int, new: int, last: bool) -> None:
        template, options, truth = self.template, self.options, self.truth
        continuous = options.continuous_usage
        prompt = truth.prompt_tokens
        parts: list[bytes] = []
        if pos == 0 and self._chat:
            parts.append(template.role(usage_json(prompt, 0) if continuous else None))
        events = self._events(pos, new)
        count = pos
        token_counts: list[int] = []
        for i, (text, reasoning, k) in enumerate(events):
            count += k
            finish = self.finish_reason if last and i == len(events) - 1 else None
            usage = usage_json(prompt, count) if continuous else None
            parts.append(template.token(text, reasoning=reasoning, finish=finish, usage=usage))
            if k:
                token_counts.append(k)
        if last:
            if options.include_usage:
                parts.append(template.usage_only(usage_json(prompt, new)))
            parts.append(DONE)
        data = b"".join(parts)
        now = time.perf_counter_ns()
        if last:
            self.conn.end_chunked(data)
        else:
            self.conn.write_chunk(data)
        if token_counts:
            if truth.first_emit_ns is None:
                truth.first_emit_ns = now
            truth.emit_ns.extend([now] * len(token_counts))
            truth.emit_tokens.extend(token_counts)

    def _emit_whole(self, new: int) -> None:
        r = self.n_reasoning if self._chat else 0
        body = full_response(
            self.template.api, self.response_id, self.model, self.created,
            text="".join(self.pieces[r:new]), reasoning="".join(self.pieces[:r]) if r else None,
            finish_reason=self.finish_reason, prompt_tokens=self.truth.prompt_tokens, completion_tokens=new)
        data = json.dumps(body, ensure_ascii=False).encode()
        now = time.perf_counter_ns()
        self.conn.send_response(200, data, headers=[("x-request-id", self.truth.request_id)])
        if new:
            self.truth.first_emit_ns = now
            self.truth.emit_ns.append(now)
            self.truth.emit_tokens.append(new)

    # endings --------------------------------------------------------------------------------------
    def _break(self) -> None:
        self.abort_engine()
        kind = self.break_kind
        message = f"simulated failure ({kind}) after {self.emitted} tokens"
        if kind == "midstream_close":
            self.conn.on_lost = None
            self.conn.abort()
            self._end(error="midstream_close")
        elif self.options.stream:
            self.conn.end_chunked(error_event(message) + DONE)
            self._end(error="error_event")
        else:
            body = json.dumps({"error": {"message": message, "type": "InternalServerError", "param": None,
                                         "code": 500}}).encode()
            self.conn.send_response(500, body)
            self._end(error="error_event", status=500)

    def _complete(self, finish_reason: str) -> None:
        self.truth.finish_reason = finish_reason
        self.metrics.success[finish_reason] += 1
        self._end()

    def _end(self, *, error: str | None = None, status: int | None = None) -> None:
        self.done = True
        truth = self.truth
        truth.completion_tokens = self.emitted
        truth.reasoning_tokens = min(self.emitted, self.n_reasoning)
        if error is not None:
            truth.error = error
            self.metrics.failures[error] += 1
        if status is not None:
            truth.status = status
        self.on_done(truth)
