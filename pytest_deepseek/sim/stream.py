"""One request's output: turns the engine's per-step token counts into bytes on the socket.

Also keeps the request's ground truth (emission times and token counts), feeds the counters, and
plays the output faults: those that act after half the tokens (`faults.MIDSTREAM_FAULTS`), a
stream that never ends, a stream without `[DONE]` or without usage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import faults as F
from .http import Connection
from .metrics import SimMetrics
from .runtime import EngineLoop
from .truth import TruthRecord
from .wire import DONE, ChunkTemplate, error_event, full_response, json_text, usage_json

MALFORMED_EVENT = b"data: {not json\n\n"
MALFORMED_BODY = b"{not json"
ENDLESS_TOKENS = 1 << 62  # the engine length of a sequence that never finishes


@dataclass
class StreamOptions:
    """How the client asked to be answered."""

    stream: bool
    include_usage: bool = False
    continuous_usage: bool = False  # usage on every chunk (only with include_usage, as vLLM)


@dataclass(frozen=True)
class OutputFault:
    """The fault a request's output carries (None: a correct answer) and its parameters."""

    name: str | None = None
    stall_s: float = 0.0
    close_not_reset: bool = False  # reset_midstream as a plain close (FIN, no terminating chunk)


class OutputSink:
    """Receives token counts from the engine loop and writes the request's chunks."""

    def __init__(self, *, conn: Connection, engine: EngineLoop, template: ChunkTemplate, pieces: list[str],
                 n_reasoning: int, finish_reason: str, options: StreamOptions, truth: TruthRecord,
                 metrics: SimMetrics, on_done: Callable[[TruthRecord], None], response_id: str, model: str,
                 created: int, fault: OutputFault | None = None, filler: list[str] | None = None) -> None:
        self.conn = conn
        self.engine = engine
        self.template = template
        self.pieces = pieces
        self.n_reasoning = n_reasoning
        self.finish_reason = finish_reason
        self.truth = truth
        self.metrics = metrics
        self.on_done = on_done
        self.response_id = response_id
        self.model = model
        self.created = created
        self.fault = fault or OutputFault()
        name = self.fault.name
        if name == F.NO_USAGE:
            options = StreamOptions(options.stream)
        self.options = options
        self.endless = name == F.ENDLESS
        self.filler = filler or [" more"]  # endless: the pieces after the planned ones, cycled
        self.middle = max(1, len(pieces) // 2)  # midstream faults act once this many tokens are out
        self._middle_pending = name in F.MIDSTREAM_FAULTS and bool(pieces)
        self._done_line = b"" if name == F.NO_DONE else DONE
        self._malformed = False  # a non-streamed answer whose body is not JSON
        self.emitted = 0
        self.done = False
        self._seq_id: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._chat = template.api == "chat"

    # engine ---------------------------------------------------------------------------------------
    def start(self, arrival_ns: int) -> None:
        """Hand the sequence to the engine, as arrived at `arrival_ns`."""
        if not self.done:
            total = ENDLESS_TOKENS if self.endless else len(self.pieces)
            self._seq_id = self.engine.submit(self, arrival_ns, self.truth.prompt_tokens, total)

    def abort_engine(self) -> None:
        """Take the sequence out of the engine (no-op when it finished or was never submitted)."""
        seq_id, self._seq_id = self._seq_id, None
        if seq_id is not None:
            self.engine.abort(seq_id)

    def on_tokens(self, n: int, finished: bool) -> None:
        """Emit the next `n` tokens; `finished` marks the sequence's last step."""
        if self.done:
            return
        if finished:
            self._seq_id = None  # the engine has let go of it
        pos, new = self.emitted, self.emitted + n
        if self._middle_pending and new >= self.middle:
            self._middle_pending = False
            self._at_middle(pos, new, finished)
        else:
            self._advance(pos, new, finished)

    def on_client_lost(self) -> None:
        """The connection closed before the end (the client left, or the server dropped it)."""
        if not self.done:
            self._cancel_timer()
            self.abort_engine()
            self._end(error="server_closed" if self.conn.closed_by_server else "client_disconnect")

    # writing --------------------------------------------------------------------------------------
    def _advance(self, pos: int, new: int, finished: bool) -> None:
        """Write tokens [pos, new); `finished`: they end the answer."""
        if pos == 0:
            self.metrics.prompt_tokens += self.truth.prompt_tokens
        if self.options.stream:
            self._emit_stream(pos, new, finished)
        elif finished:
            self._emit_whole(new, self.finish_reason)
        self.emitted = new
        self.metrics.generation_tokens += new - pos
        waits_for_head = not self.options.stream and self.conn.head_trickling  # completes once the head is out
        if finished and not self.done and not waits_for_head:
            self._complete(self.finish_reason)

    def _text(self, start: int, end: int) -> str:
        pieces = self.pieces
        if end <= len(pieces):
            return "".join(pieces[start:end])
        n, filler = len(pieces), self.filler
        return "".join(pieces[i] if i < n else filler[(i - n) % len(filler)] for i in range(start, end))

    def _events(self, pos: int, new: int) -> list[tuple[bytes, bool, int]]:
        """(JSON text, reasoning?, tokens) of the SSE events carrying pieces [pos, new)."""
        r = self.n_reasoning
        if self._chat and pos < r < new:
            return [(json_text(self._text(pos, r)), True, r - pos), (json_text(self._text(r, new)), False, new - r)]
        return [(json_text(self._text(pos, new)), self._chat and new <= r, new - pos)]

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
            parts.append(self._done_line)
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

    def _emit_whole(self, new: int, finish_reason: str | None) -> None:
        """The non-streamed answer with `new` tokens (finish_reason None: cut short)."""
        if self._malformed:
            data = MALFORMED_BODY
        else:
            r = self.n_reasoning if self._chat else 0
            body = full_response(
                self.template.api, self.response_id, self.model, self.created,
                text=self._text(r, new), reasoning=self._text(0, r) if r else None,
                finish_reason=finish_reason,
                prompt_tokens=self.truth.prompt_tokens, completion_tokens=new,
                usage=self.fault.name != F.NO_USAGE)
            data = json.dumps(body, ensure_ascii=False).encode()
        now = time.perf_counter_ns()
        self.conn.send_response(200, data, headers=[("x-request-id", self.truth.request_id)])
        if self.conn.head_trickling:  # slow_headers: the body follows the head's last byte
            self.conn.on_head_sent = lambda: self._whole_sent(time.perf_counter_ns(), new, finish_reason)
        else:
            self._note_whole(now, new)

    def _whole_sent(self, now: int, new: int, finish_reason: str | None) -> None:
        if not self.done:
            self._note_whole(now, new)
            if finish_reason is not None:
                self._complete(finish_reason)

    def _note_whole(self, now: int, new: int) -> None:
        if new:
            self.truth.first_emit_ns = now
            self.truth.emit_ns.append(now)
            self.truth.emit_tokens.append(new)

    # faults ---------------------------------------------------------------------------------------
    def _at_middle(self, pos: int, new: int, finished: bool) -> None:
        """The step that reaches half the tokens, under a midstream fault."""
        name = self.fault.name
        if name == F.STALL:
            if finished:  # that step is also the last: hold it back for the stall
                self._stall(self._after_stall, pos, new)
            else:
                self._advance(pos, new, False)
                self._stall(self._resume)
        elif name == F.MALFORMED:
            if self.options.stream:
                self.conn.write_chunk(MALFORMED_EVENT)
            else:
                self._malformed = True
            self._advance(pos, new, finished)
        else:
            self._advance(pos, new, False)
            self._end_early(name)

    def _stall(self, then: Callable[..., None], *args: int) -> None:
        """Send nothing for stall_s seconds (the engine lets go of the sequence), then call `then`."""
        self.abort_engine()
        if self.conn.peer_closed:
            self._peer_left()
            return
        # Nothing is written during the pause, so a client that leaves would go unnoticed until its end.
        self.conn.on_peer_eof = self._peer_left
        self._timer = asyncio.get_running_loop().call_later(self.fault.stall_s, then, *args)

    def _peer_left(self) -> None:
        self.conn.on_peer_eof = None
        if not self.done:
            self.on_client_lost()
        self.conn.on_lost = None
        self.conn.abort()

    def _resume(self) -> None:
        self._timer = None
        self.conn.on_peer_eof = None
        if not self.done:  # the rest goes back to the engine as a sequence with nothing to prefill
            self._seq_id = self.engine.submit(self, time.perf_counter_ns(), 0, len(self.pieces) - self.emitted)

    def _after_stall(self, pos: int, new: int) -> None:
        self._timer = None
        self.conn.on_peer_eof = None
        if not self.done:
            self._advance(pos, new, True)

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _end_early(self, name: str | None) -> None:
        """End the answer now, the way fault `name` says (reset, truncated or error event)."""
        self.abort_engine()
        stream = self.options.stream
        if name == F.RESET_MIDSTREAM:
            self.conn.on_lost = None
            if self.fault.close_not_reset:
                self.conn.abort()
            else:
                self.conn.reset()
            self._end(error="midstream_close" if self.fault.close_not_reset else F.RESET_MIDSTREAM,
                      status=None if stream else 0)
        elif name == F.TRUNCATED:
            if stream:
                self.conn.end_chunked()
            else:
                self._emit_whole(self.emitted, None)
            self._end(error=F.TRUNCATED)
        else:
            message = f"simulated failure (error_event) after {self.emitted} tokens"
            if stream:
                self.conn.end_chunked(error_event(message) + DONE)
                self._end(error=F.ERROR_EVENT)
            else:
                body = json.dumps({"error": {"message": message, "type": "InternalServerError", "param": None,
                                             "code": 500}}).encode()
                self.conn.send_response(500, body)
                self._end(error=F.ERROR_EVENT, status=500)

    # endings --------------------------------------------------------------------------------------
    def _complete(self, finish_reason: str) -> None:
        self.truth.finish_reason = finish_reason
        if self.fault.name == F.MALFORMED:  # complete, but with a line no client can parse
            self._end(error=F.MALFORMED)
            return
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
