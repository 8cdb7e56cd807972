"""The OpenAI-compatible routes of the simulator (vLLM's shapes), on top of the HTTP layer."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from . import faults as F
from .config import SimConfig, SimConfigError
from .content import ContentSource, Generation, load_content, random_words
from .engine import EngineParams
from .http import Connection, Request
from .metrics import SimMetrics
from .prompts import PromptCounter
from .runtime import EngineLoop
from .stream import OutputFault, OutputSink, StreamOptions
from .truth import TruthRecord, TruthWriter
from .wire import Api, ChunkTemplate, error_body
from .words import word_pool

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
FLUSH_INTERVAL_S = 0.5
_STATUS_ERROR_TYPES = {429: "RateLimitError", 500: "InternalServerError", 502: "BadGatewayError",
                       503: "ServiceUnavailableError"}


class ApiError(Exception):
    """A request answered with an HTTP error and a JSON error body."""

    def __init__(self, status: int, message: str, kind: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass
class Prompt:
    """A request's prompt: its text (for the content source) and its token count."""

    text: str
    tokens: list[int]
    messages: list[dict[str, Any]] | None = None


class SimApp:
    """State of one simulated engine: config, tokenizer, content, engine loop, counters, truth."""

    def __init__(self, config: SimConfig, *, truth_path: Path | None = None) -> None:
        self.config = config
        self.prompts = PromptCounter()
        word_pool()  # built now, not inside the first request's timing
        self.prompts.encode("warm up")
        self.content: ContentSource = load_content(config.content, dict(config.content_options))
        self.engine = EngineLoop(EngineParams.from_config(config), max_lag_ns=int(config.max_lag_ms * 1e6))
        self.metrics = SimMetrics()
        self.truth = TruthWriter(truth_path, FLUSH_INTERVAL_S) if truth_path is not None else None
        self._numbers = itertools.count(1)  # generation requests in arrival order (seeds, fault injection)
        try:
            self.fault_plan = F.FaultPlan(config.faults, seed=config.seed,
                                          legacy={key: getattr(config, key) for key in F.LEGACY_KEYS})
        except F.FaultSpecError as exc:
            raise SimConfigError(str(exc)) from None
        self.on_refused: Callable[[float], None] | None = None  # set by the server: stop listening for S s
        self._ids = itertools.count(1)
        self._id_prefix = f"sim-{os.getpid():x}-{random.getrandbits(24):06x}"
        self._flusher: asyncio.TimerHandle | None = None
        self.started_at = int(time.time())

    async def start(self) -> None:
        """Start the engine loop and the periodic truth flush."""
        self.engine.start()
        if self.truth is not None:
            self._schedule_flush()

    async def stop(self) -> None:
        """Stop the engine loop and flush the truth file."""
        await self.engine.stop()
        if self._flusher is not None:
            self._flusher.cancel()
        if self.truth is not None:
            self.truth.close()

    def _schedule_flush(self) -> None:
        assert self.truth is not None
        self.truth.flush()
        self._flusher = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._schedule_flush)

    # routing --------------------------------------------------------------------------------------
    async def handle(self, request: Request, conn: Connection) -> None:
        """Answer one HTTP request."""
        route = (request.method, request.path.rstrip("/") or "/")
        try:
            if route in (("POST", "/v1/completions"), ("POST", "/v1/chat/completions")):
                self._generate(request, conn, "chat" if "chat" in route[1] else "completions")
            elif route == ("GET", "/health"):
                conn.send_response(200, b"", content_type="text/plain")
            elif route in (("GET", "/v1/models"), ("GET", "/models")):
                self._json(conn, 200, self._models())
            elif route in (("POST", "/tokenize"), ("POST", "/v1/tokenize")):
                self._json(conn, 200, self._tokenize(_json_body(request)))
            elif route == ("GET", "/metrics"):
                self._metrics(conn)
            elif route == ("GET", "/version"):
                self._json(conn, 200, {"version": __version__, "engine": "pytest-deepseek-sim",
                                       "preset": self.config.preset})
            elif route[1] in ("/v1/completions", "/v1/chat/completions", "/health", "/v1/models", "/tokenize",
                              "/metrics", "/version"):
                raise ApiError(405, f"method {request.method} not allowed on {request.path}", "MethodNotAllowed")
            else:
                raise ApiError(404, f"no route {request.method} {request.path}", "NotFoundError")
        except ApiError as exc:
            self._json(conn, exc.status, error_body(str(exc), exc.kind, exc.status))

    @staticmethod
    def _json(conn: Connection, status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> None:
        conn.send_response(status, json.dumps(body, ensure_ascii=False).encode(), headers=headers)

    def _models(self) -> dict[str, Any]:
        model = self.config.model
        return {"object": "list", "data": [{
            "id": model, "object": "model", "created": self.started_at, "owned_by": "pytest-deepseek",
            "root": model, "parent": None, "max_model_len": self.config.max_model_len, "permission": []}]}

    def _metrics(self, conn: Connection) -> None:
        self.metrics.running = self.engine.model.num_running
        self.metrics.waiting = self.engine.model.num_waiting
        self.metrics.engine_steps = self.engine.steps
        self.metrics.lateness_max_s = self.engine.late_ns_max / 1e9
        text = self.metrics.render(self.config.model)
        conn.send_response(200, text.encode(), content_type="text/plain; version=0.0.4; charset=utf-8")

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is not None and model != self.config.model:
            raise ApiError(404, f"The model `{model}` does not exist. Served models: {self.config.model}",
                           "NotFoundError")

    def _tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        if "messages" in body:
            prompt = self._chat_prompt(body["messages"])
        elif "prompt" in body:
            prompt = self._completion_prompt(body["prompt"])
        else:
            raise ApiError(400, "tokenize needs 'prompt' or 'messages'")
        return {"count": len(prompt.tokens), "max_model_len": self.config.max_model_len,
                "tokens": prompt.tokens, "token_strs": None}

    # prompts --------------------------------------------------------------------------------------
    def _completion_prompt(self, raw: Any) -> Prompt:
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], (str, list)):
            raw = raw[0]  # a batch of one
        if isinstance(raw, str):
            return Prompt(raw, self.prompts.encode(raw))
        if isinstance(raw, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
            vocab = self.prompts.tok.vocab_size
            if any(t < 0 or t >= vocab for t in raw):
                raise ApiError(400, f"prompt token ids must be in [0, {vocab})")
            return Prompt(self.prompts.tok.decode(raw), list(raw))
        raise ApiError(400, "'prompt' must be a string, a list of token ids, or a batch of one of those")

    def _chat_prompt(self, raw: Any) -> Prompt:
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "'messages' must be a non-empty list")
        messages: list[dict[str, Any]] = []
        for message in raw:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise ApiError(400, "each message must be an object with a string 'role'")
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
            elif content is not None and not isinstance(content, str):
                raise ApiError(400, "message 'content' must be a string or a list of text parts")
            messages.append({**message, "content": content if content is not None else ""})
        try:
            text = self.prompts.render(messages)
        except Exception as exc:  # template errors of any kind are the request's fault
            raise ApiError(400, f"cannot render the chat template: {exc}") from exc
        return Prompt(text, self.prompts.encode(text), messages)

    # generation -----------------------------------------------------------------------------------
    def _generate(self, request: Request, conn: Connection, api: Api) -> None:
        arrival_ns = time.perf_counter_ns()
        request_id = request.headers.get("x-request-id") or f"{self._id_prefix}-{next(self._ids)}"
        truth = TruthRecord(request_id=request_id, arrival_ns=arrival_ns, api=api)
        try:
            body = _json_body(request)
            truth.stream = bool(body.get("stream", False))
            self._check_model(body)
            prompt = self._chat_prompt(body.get("messages")) if api == "chat" else self._completion_prompt(
                body.get("prompt"))
            truth.prompt_tokens = len(prompt.tokens)
            params = self._sampling(body, api, len(prompt.tokens))
        except ApiError as exc:
            truth.status, truth.error = exc.status, f"http_{exc.status}"
            self._fail(conn, truth, exc)
            return
        self._start_generation(conn, api, truth, prompt, params)

    def _sampling(self, body: dict[str, Any], api: Api, prompt_tokens: int) -> dict[str, Any]:
        limit = self.config.max_model_len
        if prompt_tokens >= limit:
            raise ApiError(400, f"This model's maximum context length is {limit} tokens; "
                                f"the prompt has {prompt_tokens} tokens")
        raw_max = body.get("max_completion_tokens") if api == "chat" else None
        if raw_max is None:
            raw_max = body.get("max_tokens")
        default_max = 16 if api == "completions" else limit - prompt_tokens
        max_tokens = _int_field("max_tokens", raw_max, default_max, minimum=1)
        if prompt_tokens + max_tokens > limit:
            raise ApiError(400, f"This model's maximum context length is {limit} tokens; you requested "
                                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, "
                                f"{max_tokens} for the completion)")
        min_tokens = _int_field("min_tokens", body.get("min_tokens"), 0, minimum=0)
        if min_tokens > max_tokens:
            raise ApiError(400, f"min_tokens ({min_tokens}) must be <= max_tokens ({max_tokens})")
        n = body.get("n", 1)
        if n != 1:
            raise ApiError(400, "the simulator supports only n=1")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise ApiError(400, "'stream_options' must be an object")
        include_usage = bool(options.get("include_usage", False))
        return {
            "max_tokens": max_tokens,
            "min_tokens": min_tokens,
            "ignore_eos": bool(body.get("ignore_eos", False)),
            "options": StreamOptions(
                stream=bool(body.get("stream", False)),
                include_usage=include_usage,
                continuous_usage=include_usage and bool(options.get("continuous_usage_stats", False)),
            ),
        }

    def _start_generation(self, conn: Connection, api: Api, truth: TruthRecord, prompt: Prompt,
                          params: dict[str, Any]) -> None:
        config = self.config
        number = next(self._numbers)
        hit = self.fault_plan.pick(number)
        if hit is not None:
            truth.fault = hit.name
            self.metrics.faults[hit.name] += 1
            if self._answer_fault(conn, truth, hit.name, number):
                return
        rng = random.Random((config.seed << 32) + number)
        max_tokens, min_tokens, ignore_eos = params["max_tokens"], params["min_tokens"], params["ignore_eos"]
        try:
            generation = self.content.generate(
                prompt_text=prompt.text, messages=prompt.messages, max_tokens=max_tokens,
                min_tokens=min_tokens, ignore_eos=ignore_eos, rng=rng)
        except Exception as exc:  # a broken content source is reported to the client, not hidden
            truth.status, truth.error = 500, "content_error"
            self._fail(conn, truth, ApiError(500, f"content source failed: {exc!r}", "InternalServerError"))
            return
        if generation.fail_status is not None:
            status = generation.fail_status
            truth.status, truth.error = status, f"http_{status}"
            self._fail(conn, truth, ApiError(status, f"content source answered HTTP {status}",
                                             "InternalServerError" if status >= 500 else "BadRequestError"))
            return
        pieces, n_reasoning, finish = self._pieces(generation, api, max_tokens, min_tokens, ignore_eos, rng)
        fault = OutputFault(hit.name if hit else None, stall_s=config.stall_s,
                            close_not_reset=hit is not None and hit.key == F.CLOSE_MIDSTREAM_KEY)
        response_id = ("cmpl-" if api == "completions" else "chatcmpl-") + truth.request_id
        created = int(time.time())
        sink = OutputSink(
            conn=conn, engine=self.engine, template=ChunkTemplate.make(api, response_id, config.model, created),
            pieces=pieces, n_reasoning=n_reasoning, finish_reason=finish, options=params["options"], truth=truth,
            metrics=self.metrics, on_done=self._record, response_id=response_id, model=config.model,
            created=created, fault=fault, filler=random_words(rng, 64) if fault.name == F.ENDLESS else None)
        self._answer(conn, sink, slow_head=fault.name == F.SLOW_HEADERS)

    def _answer(self, conn: Connection, sink: OutputSink, *, slow_head: bool) -> None:
        """Start the answer: stream headers (if streamed), then the engine sequence.

        With a slow head, a stream's generation starts once its last header byte is out; a
        non-streamed answer is generated first and its head trickles when it is written.
        """
        truth = sink.truth
        conn.on_lost = sink.on_client_lost
        if slow_head:
            conn.trickle_next_head(self.config.header_trickle_s)
        if not sink.options.stream:
            sink.start(truth.arrival_ns)
            return
        if slow_head:
            conn.on_head_sent = lambda: sink.start(time.perf_counter_ns())
        conn.start_chunked(200, content_type="text/event-stream; charset=utf-8",
                           headers=[("x-request-id", truth.request_id)])
        if not slow_head:
            sink.start(truth.arrival_ns)

    def _answer_fault(self, conn: Connection, truth: TruthRecord, name: str, number: int) -> bool:
        """Answer a fault that replaces the generation; False when `name` acts on the output instead."""
        if name == F.REFUSED:
            self._dropped(truth, F.REFUSED)
            if self.on_refused is not None:
                self.on_refused(self.config.refused_s)  # closes this connection with the others
            else:
                conn.abort()
            return True
        if name == F.RESET_BEFORE_HEADERS:
            conn.reset()
            self._dropped(truth, F.RESET_BEFORE_HEADERS)
            return True
        status = F.STATUS_FAULTS.get(name)
        if status is None:
            return False
        truth.status, truth.error = status, f"injected_http_{status}"
        headers = [("retry-after", str(self.config.retry_after_s))] if name == F.RATE_LIMITED else None
        self._fail(conn, truth, ApiError(status, f"simulated failure of request {number} ({name})",
                                         _STATUS_ERROR_TYPES.get(status, "InternalServerError")), headers)
        return True

    def _pieces(self, generation: Generation, api: Api, max_tokens: int, min_tokens: int, ignore_eos: bool,
                rng: random.Random) -> tuple[list[str], int, str]:
        """All output pieces (reasoning first), how many are reasoning, and the finish reason."""
        reasoning = list(generation.reasoning)
        if not reasoning and self.config.reasoning_tokens:
            reasoning = random_words(rng, self.config.reasoning_tokens)
        if reasoning and api == "completions":
            reasoning = [THINK_OPEN, *reasoning, THINK_CLOSE]
        pieces = reasoning + list(generation.answer)
        target = max_tokens if ignore_eos else min_tokens
        if len(pieces) < target:
            pieces += random_words(rng, target - len(pieces))
        natural = len(pieces)
        pieces = pieces[:max_tokens]
        finish = "length" if natural >= max_tokens else "stop"
        return pieces, min(len(reasoning), len(pieces)), finish

    def _fail(self, conn: Connection, truth: TruthRecord, exc: ApiError,
              headers: list[tuple[str, str]] | None = None) -> None:
        self.metrics.failures[f"http_{exc.status}"] += 1
        self._json(conn, exc.status, error_body(str(exc), exc.kind, exc.status),
                   headers=[("x-request-id", truth.request_id), *(headers or [])])
        self._record(truth)

    def _dropped(self, truth: TruthRecord, error: str) -> None:
        """Record a request whose connection went away before a status line."""
        truth.status, truth.error = 0, error
        self.metrics.failures[error] += 1
        self._record(truth)

    def _record(self, truth: TruthRecord) -> None:
        if self.truth is not None:
            self.truth.write(truth)


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _int_field(name: str, raw: Any, default: int, *, minimum: int) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ApiError(400, f"'{name}' must be an integer")
    if raw < minimum:
        raise ApiError(400, f"'{name}' must be >= {minimum}")
    return raw
