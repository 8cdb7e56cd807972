"""Progress of a running measurement: a live display on a terminal, plain lines in a log.

A measurement counts its finished requests (cheap, on the event loop); a timer thread samples the
counts, works out the recent rates and the ETA, and shows them. Nothing is redrawn per request:
the display refreshes `LIVE_REFRESH_S` apart, a log gets a line every `PLAIN_EVERY_S`, and both
get one plain closing line when the measurement ends.

"tok/s now" counts the output tokens of the requests that finished in the last `RATE_WINDOW_S`
seconds (a request's tokens count when it finishes, not while they stream).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

PLAIN_EVERY_S = 30.0  # seconds between progress lines when the output is not a terminal
LIVE_REFRESH_S = 0.25  # seconds between redraws of the live display
SAMPLE_S = 1.0  # longest time between two samples of the counts (plain lines)
RATE_WINDOW_S = 10.0  # the recent rates are taken over this many seconds
BAR_WIDTH = 24
MIN_BAR_WIDTH = 10  # the bar shrinks to this before the label is cut
PREFIX = "[deepseek]"

LineFn = Callable[[str], None]


@dataclass(frozen=True)
class ProgressCounts:
    """What a measurement has counted so far (measured requests only, warmup excluded)."""

    label: str
    total: int
    done: int = 0
    failed: int = 0
    tokens: int = 0  # output tokens of the finished requests
    elapsed_s: float = 0.0  # since the measured phase started
    verdict: str | None = None  # with early stop: the latest look's verdict so far

    @property
    def mean_tok_s(self) -> float:
        """Output tokens per second since the start."""
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mean_req_s(self) -> float:
        """Finished requests per second since the start."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


CountsFn = Callable[[float], ProgressCounts]  # the counts at a perf_counter time


@dataclass(frozen=True)
class ProgressState:
    """Counts with the recent rate and the ETA (None when not known yet)."""

    counts: ProgressCounts
    tok_s_now: float | None = None
    eta_s: float | None = None


class RateWindow:
    """Requests and output tokens per second over the last `span_s` seconds, from samples of the
    running totals (taken on a timer, so their cost does not grow with the request rate)."""

    def __init__(self, span_s: float = RATE_WINDOW_S) -> None:
        self.span_s = span_s
        self._samples: deque[tuple[float, int, int]] = deque()

    def add(self, t: float, done: int, tokens: int) -> None:
        """Record the totals at time `t` (seconds, increasing)."""
        self._samples.append((t, done, tokens))
        # Keep the newest sample at or before the window's start: the rates then span the window.
        while len(self._samples) >= 2 and self._samples[1][0] <= t - self.span_s:
            self._samples.popleft()

    def rates(self) -> tuple[float, float] | None:
        """(requests/s, tokens/s) between the oldest kept sample and the newest (None before two
        samples some time apart)."""
        if len(self._samples) < 2:
            return None
        t0, done0, tokens0 = self._samples[0]
        t1, done1, tokens1 = self._samples[-1]
        if t1 <= t0:
            return None
        return (done1 - done0) / (t1 - t0), (tokens1 - tokens0) / (t1 - t0)


def eta_s(remaining: int, req_per_s: float | None) -> float | None:
    """Seconds until `remaining` requests finish at `req_per_s` (None when the rate is unknown)."""
    if remaining <= 0:
        return 0.0
    if req_per_s is None or req_per_s <= 0:
        return None
    return remaining / req_per_s


def progress_state(counts: ProgressCounts, window: RateWindow) -> ProgressState:
    """The counts with the window's token rate and an ETA at the window's request rate (the mean
    rate since the start while the window has seen no request finish)."""
    rates = window.rates()
    recent_req, recent_tok = rates if rates is not None else (None, None)
    req_rate = recent_req if recent_req else (counts.mean_req_s or None)
    return ProgressState(counts, tok_s_now=recent_tok, eta_s=eta_s(counts.total - counts.done, req_rate))


def duration_text(seconds: float) -> str:
    """`42.3s`, `3m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _counts_text(counts: ProgressCounts) -> str:
    return f"{PREFIX} {counts.label}: {counts.done}/{counts.total} requests, {counts.failed} failed"


def progress_line(state: ProgressState) -> str:
    """A line while the measurement runs: counts, elapsed, recent output tok/s, ETA."""
    counts = state.counts
    rate = state.tok_s_now if state.tok_s_now is not None else counts.mean_tok_s
    eta = "?" if state.eta_s is None else duration_text(state.eta_s)
    line = f"{_counts_text(counts)}, {duration_text(counts.elapsed_s)}, ~{rate:,.0f} output tok/s now, ETA {eta}"
    return line + (f", verdict so far {counts.verdict.upper()}" if counts.verdict else "")


def closing_line(counts: ProgressCounts) -> str:
    """The line when the measurement ends: counts, elapsed, output tok/s since the start."""
    return f"{_counts_text(counts)}, {duration_text(counts.elapsed_s)}, ~{counts.mean_tok_s:,.0f} output tok/s"


# ---------------------------------------------------------------------------------------------
# Displays


class Display(Protocol):
    """Shows the states of one measurement."""

    tick_s: float  # seconds between two samples

    def open(self) -> None:
        """Before the first state."""

    def show(self, state: ProgressState, now: float) -> None:
        """A new state (called on the timer thread)."""

    def close(self, counts: ProgressCounts) -> None:
        """The measurement ended with `counts`."""


class LineDisplay:
    """Plain lines: one every `every_s` seconds, and the closing line."""

    def __init__(self, write_line: LineFn, every_s: float = PLAIN_EVERY_S) -> None:
        self.write_line = write_line
        self.every_s = every_s
        self.tick_s = min(SAMPLE_S, every_s / 4)
        self._last: float | None = None

    def open(self) -> None:
        self._last = None

    def show(self, state: ProgressState, now: float) -> None:
        if self._last is None:
            self._last = now - state.counts.elapsed_s  # the period runs from the start
        if now - self._last >= self.every_s:
            self._last = now
            self.write_line(progress_line(state))

    def close(self, counts: ProgressCounts) -> None:
        self.write_line(closing_line(counts))


@dataclass(frozen=True)
class LiveTerminal:
    """A terminal a live display may redraw: its width, how to write to it (`writing()` lets
    output through to the terminal meanwhile) and how to start on a fresh line."""

    width: int
    writing: Callable[[], AbstractContextManager[object]]
    fresh_line: Callable[[], None]


def live_renderable(state: ProgressState, width: int) -> "RenderableType":
    """One line of `width` columns: label, bar, done/total, failed, tok/s now, elapsed, ETA. The
    figures are never cut: the bar gives way first, then the label."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    counts = state.counts
    details = Text(f"{counts.done}/{counts.total}")
    details.append(f"  {counts.failed} failed", style="bold red" if counts.failed else "dim")
    rate = "?" if state.tok_s_now is None else f"{state.tok_s_now:,.0f}"
    details.append(f"  {rate} tok/s now  {duration_text(counts.elapsed_s)}")
    details.append(f"  ETA {'?' if state.eta_s is None else duration_text(state.eta_s)}", style="cyan")
    if counts.verdict:
        details.append(f"  so far {counts.verdict.upper()}", style="bold")
    label = Text(f"{PREFIX} {counts.label}", style="bold")
    room = max(0, width - details.cell_len - 2)  # two single-space gaps
    bar_width = max(0, min(BAR_WIDTH, max(room - label.cell_len, min(MIN_BAR_WIDTH, room // 3))))
    label.truncate(max(1, room - bar_width), overflow="ellipsis")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=label.cell_len)
    grid.add_column(no_wrap=True, width=bar_width)
    grid.add_column(no_wrap=True, width=details.cell_len)
    grid.add_row(label, ProgressBar(total=max(counts.total, 1), completed=counts.done, width=bar_width), details)
    return grid


class LiveDisplay:
    """A rich live line redrawn in place; on close it is erased and the closing line written."""

    tick_s = LIVE_REFRESH_S

    def __init__(self, terminal: LiveTerminal, write_line: LineFn, label: str, total: int) -> None:
        self.terminal = terminal
        self.write_line = write_line
        self._state = ProgressState(ProgressCounts(label, total))
        self._live: Live | None = None

    def open(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(force_terminal=True, width=self.terminal.width, highlight=False)
        self._live = Live(get_renderable=lambda: live_renderable(self._state, self.terminal.width), console=console,
                          auto_refresh=False, transient=True, redirect_stdout=False, redirect_stderr=False)
        with self.terminal.writing():
            self.terminal.fresh_line()
            self._live.start(refresh=True)

    def show(self, state: ProgressState, now: float) -> None:
        self._state = state
        if self._live is not None:
            with self.terminal.writing():
                self._live.refresh()

    def close(self, counts: ProgressCounts) -> None:
        if self._live is not None:
            with self.terminal.writing():
                self._live.stop()
            self._live = None
        self.write_line(closing_line(counts))


# ---------------------------------------------------------------------------------------------
# Following a measurement


class ProgressWatch:
    """Follows one measurement: samples `read` on a timer thread and shows the states on `display`."""

    def __init__(self, read: CountsFn, display: Display, window_s: float = RATE_WINDOW_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.read = read
        self.display = display
        self.window = RateWindow(window_s)
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: float | None = None) -> ProgressState:
        """Sample the counts now and show them."""
        now = self.clock() if now is None else now
        counts = self.read(now)
        self.window.add(now, counts.done, counts.tokens)
        state = progress_state(counts, self.window)
        self.display.show(state, now)
        return state

    def start(self) -> "ProgressWatch":
        """Open the display and start the timer thread."""
        self.display.open()
        self._thread = threading.Thread(target=self._run, name="deepseek-progress", daemon=True)
        self._thread.start()
        return self

    def close(self) -> ProgressCounts:
        """Stop the timer, close the display with the final counts, and return them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        counts = self.read(self.clock())
        self.display.close(counts)
        return counts

    def _run(self) -> None:
        while not self._stop.wait(self.display.tick_s):
            try:
                self.tick()
            except OSError:
                return  # the terminal went away: stop showing, the measurement goes on


class ProgressOutput:
    """Where progress goes. Called with a line, it writes it (what a gate's `progress` always
    was); `watch` follows a measurement, live on `live` when given, else with plain lines."""

    def __init__(self, write_line: LineFn, live: LiveTerminal | None = None, every_s: float = PLAIN_EVERY_S) -> None:
        self.write_line = write_line
        self.live = live
        self.every_s = every_s

    def __call__(self, line: str) -> None:
        self.write_line(line)

    def display(self, label: str, total: int) -> Display:
        """The display of a measurement of `total` requests named `label`."""
        if self.live is not None:
            return LiveDisplay(self.live, self.write_line, label, total)
        return LineDisplay(self.write_line, self.every_s)

    def watch(self, label: str, total: int, read: CountsFn) -> ProgressWatch:
        """Start following a measurement whose counts `read` gives (close the watch at its end)."""
        return ProgressWatch(read, self.display(label, total)).start()
