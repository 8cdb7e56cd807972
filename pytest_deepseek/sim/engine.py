"""The engine model: continuous batching as a pure function of arrival times (no I/O, no clock).

A step starts at a given time, admits waiting sequences (FIFO, up to `max_num_seqs` admitted at
once), prefills prompts (all of them, or at most `prefill_chunk` tokens per step), and emits
tokens: one for every sequence whose prefill completes in the step, `tokens_per_step` for every
sequence already decoding. Its duration is

    step_base + step_per_seq × (sequences emitting) + (prompt tokens prefilled) / prefill_tps

so aggregate throughput rises with the batch and saturates. Sequences that arrive after a
step's start wait for the next step. Times are integer nanoseconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import SimConfig


@dataclass(frozen=True)
class EngineParams:
    """The timing shape of the engine."""

    max_num_seqs: int = 64
    prefill_tps: float = 20000.0
    prefill_chunk: int = 0  # prompt tokens per step across sequences; 0 = whole prompts at once
    step_base_ns: int = 20_000_000
    step_per_seq_ns: int = 300_000
    tokens_per_step: int = 1

    @classmethod
    def from_config(cls, config: SimConfig) -> EngineParams:
        """Engine parameters of a simulator config."""
        return cls(
            max_num_seqs=config.max_num_seqs,
            prefill_tps=config.prefill_tps,
            prefill_chunk=config.prefill_chunk,
            step_base_ns=round(config.step_base_ms * 1e6),
            step_per_seq_ns=round(config.step_per_seq_ms * 1e6),
            tokens_per_step=config.tokens_per_step,
        )

    def step_ns(self, running: int, prefill_tokens: int = 0) -> int:
        """Duration of a step in which `running` sequences emit and `prefill_tokens` are prefilled."""
        prefill = math.ceil(prefill_tokens * 1e9 / self.prefill_tps) if prefill_tokens else 0
        return self.step_base_ns + self.step_per_seq_ns * running + prefill


@dataclass
class _Seq:
    seq_id: int
    arrival_ns: int
    prompt_tokens: int
    output_tokens: int
    prefilled: int = 0
    emitted: int = 0
    started: bool = False  # prefill complete, first token emitted


@dataclass(frozen=True)
class Step:
    """One engine iteration: when it ran and what each sequence emitted at its end."""

    start_ns: int
    end_ns: int
    emits: tuple[tuple[int, int], ...]  # (seq_id, tokens) in batch order; tokens may be 0 at an empty end
    finished: frozenset[int]
    prefill_tokens: int
    running: int  # sequences that emitted in this step


@dataclass
class EngineModel:
    """Continuous batching over submitted sequences; the caller chooses each step's start."""

    params: EngineParams
    _waiting: deque[_Seq] = field(default_factory=deque)
    _active: dict[int, _Seq] = field(default_factory=dict)  # insertion order = admission order
    _last_end_ns: int | None = None

    def submit(self, seq_id: int, arrival_ns: int, prompt_tokens: int, output_tokens: int) -> None:
        """Queue a sequence. Submit in arrival order."""
        self._waiting.append(_Seq(seq_id, arrival_ns, max(0, prompt_tokens), max(0, output_tokens)))

    def abort(self, seq_id: int) -> bool:
        """Drop a sequence wherever it is; False when it is not known (finished or never submitted)."""
        if self._active.pop(seq_id, None) is not None:
            return True
        for seq in self._waiting:
            if seq.seq_id == seq_id:
                self._waiting.remove(seq)
                return True
        return False

    @property
    def num_running(self) -> int:
        """Sequences admitted to the batch."""
        return len(self._active)

    @property
    def num_waiting(self) -> int:
        """Sequences queued behind the batch limit (or not yet reached by a step)."""
        return len(self._waiting)

    def has_work(self) -> bool:
        """True while any sequence is admitted or waiting."""
        return bool(self._active or self._waiting)

    def ready_at(self) -> int | None:
        """The earliest time the next step can start, or None when there is nothing to do."""
        if self._active:
            return self._last_end_ns if self._last_end_ns is not None else min(
                s.arrival_ns for s in self._active.values()
            )
        if self._waiting:
            first = self._waiting[0].arrival_ns
            return first if self._last_end_ns is None else max(first, self._last_end_ns)
        return None

    def plan_step(self, start_ns: int) -> Step | None:
        """Run one step starting at `start_ns`; None when no sequence can make progress then."""
        params = self.params
        while self._waiting and len(self._active) < params.max_num_seqs and self._waiting[0].arrival_ns <= start_ns:
            seq = self._waiting.popleft()
            self._active[seq.seq_id] = seq
        budget = params.prefill_chunk if params.prefill_chunk > 0 else math.inf
        prefill_tokens = 0
        emits: list[tuple[int, int]] = []
        finished: set[int] = set()
        per_step = params.tokens_per_step
        for seq in self._active.values():
            if seq.started:
                n = min(per_step, seq.output_tokens - seq.emitted)
            else:
                take = min(seq.prompt_tokens - seq.prefilled, budget)
                if take > 0:
                    seq.prefilled += int(take)
                    budget -= take
                    prefill_tokens += int(take)
                if seq.prefilled < seq.prompt_tokens:
                    continue
                seq.started = True
                n = min(1, seq.output_tokens)
            seq.emitted += n
            emits.append((seq.seq_id, n))
            if seq.emitted >= seq.output_tokens:
                finished.add(seq.seq_id)
        if not emits and not prefill_tokens:
            return None
        for seq_id in finished:
            del self._active[seq_id]
        end_ns = start_ns + params.step_ns(len(emits), prefill_tokens)
        self._last_end_ns = end_ns
        return Step(start_ns, end_ns, tuple(emits), frozenset(finished), prefill_tokens, len(emits))


@dataclass(frozen=True)
class SimRequest:
    """A request for `simulate`: when it arrives and how long its prompt and output are."""

    arrival_ns: int
    prompt_tokens: int
    output_tokens: int


def simulate(params: EngineParams, requests: Iterable[SimRequest]) -> list[list[tuple[int, int]]]:
    """Emission schedule of every request, [(time_ns, tokens), ...] in input order, with no clock lag."""
    ordered = sorted(enumerate(requests), key=lambda item: item[1].arrival_ns)
    model = EngineModel(params)
    schedule: list[list[tuple[int, int]]] = [[] for _ in ordered]
    for index, req in ordered:
        model.submit(index, req.arrival_ns, req.prompt_tokens, req.output_tokens)
    while (start := model.ready_at()) is not None:
        step = model.plan_step(start)
        if step is None:  # defensive: ready_at only reports times at which a step can run
            raise RuntimeError("engine model made no progress")
        for seq_id, n in step.emits:
            schedule[seq_id].append((step.end_ns, n))
    return schedule
