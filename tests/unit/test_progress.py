"""Progress of a measurement: recent rates, ETA, line text, plain lines at their period, the live display."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator

import pytest
from rich.console import Console

from pytest_deepseek.report.progress import (
    LineDisplay,
    LiveDisplay,
    LiveTerminal,
    ProgressCounts,
    ProgressOutput,
    ProgressState,
    ProgressWatch,
    RateWindow,
    closing_line,
    duration_text,
    eta_s,
    live_renderable,
    progress_line,
    progress_state,
)
from pytest_deepseek.serving.measure import Progress
from pytest_deepseek.serving.records import RequestRecord

ESC = "\x1b"


def record(index: int, n_tokens: int = 10, warmup: bool = False, failed: bool = False) -> RequestRecord:
    return RequestRecord(index=index, request_id=f"r-{index}", api="completions", warmup=warmup,
                         completion_tokens=n_tokens, t_send=time.perf_counter_ns(),
                         success=not failed, error_kind="http" if failed else None)


# -- recent rates, ETA ------------------------------------------------------------------------

def test_rates_cover_only_the_last_window() -> None:
    window = RateWindow(span_s=10.0)
    done = tokens = 0
    for t in range(0, 31):  # 1 request of 10 tokens a second for 20 s, then 4 of 50 tokens a second
        window.add(float(t), done, tokens)
        done, tokens = (done + 1, tokens + 10) if t < 20 else (done + 4, tokens + 200)
    req_s, tok_s = window.rates()  # type: ignore[misc]
    assert req_s == pytest.approx(4.0) and tok_s == pytest.approx(200.0)


def test_rates_span_the_window_from_the_sample_before_it() -> None:
    window = RateWindow(span_s=10.0)
    for t, total in [(0.0, 0), (4.0, 40), (9.0, 90), (12.0, 120), (15.0, 150)]:
        window.add(t, total, total * 10)
    # 15 - 10 = 5: the sample at 4 s is kept (the newest at or before the window's start).
    assert window.rates() == (pytest.approx(10.0), pytest.approx(100.0))


def test_rates_unknown_before_two_samples_apart() -> None:
    window = RateWindow()
    assert window.rates() is None
    window.add(1.0, 3, 30)
    assert window.rates() is None
    window.add(1.0, 4, 40)
    assert window.rates() is None


def test_eta() -> None:
    assert eta_s(30, 3.0) == pytest.approx(10.0)
    assert eta_s(0, None) == 0.0 and eta_s(-2, 1.0) == 0.0
    assert eta_s(5, None) is None and eta_s(5, 0.0) is None


def test_eta_falls_back_to_the_mean_rate_when_nothing_finished_lately() -> None:
    window = RateWindow(span_s=10.0)
    window.add(20.0, 10, 1000)
    window.add(30.0, 10, 1000)  # a stall: no request finished in the window
    state = progress_state(ProgressCounts("p:s", total=40, done=10, tokens=1000, elapsed_s=30.0), window)
    assert state.tok_s_now == 0.0
    assert state.eta_s == pytest.approx(30 / (10 / 30.0))


def test_eta_uses_the_recent_request_rate() -> None:
    window = RateWindow(span_s=10.0)
    window.add(0.0, 0, 0)
    window.add(10.0, 20, 2000)
    state = progress_state(ProgressCounts("p:s", total=100, done=20, tokens=2000, elapsed_s=40.0), window)
    assert state.tok_s_now == pytest.approx(200.0) and state.eta_s == pytest.approx(40.0)


# -- line text ---------------------------------------------------------------------------------

def test_duration_text() -> None:
    assert [duration_text(s) for s in (0.0, 42.34, 59.96, 185.0, 3725.0)] == \
        ["0.0s", "42.3s", "60.0s", "3m05s", "1h02m"]


def test_progress_line_text() -> None:
    counts = ProgressCounts("sim:in64-out16-c4", total=400, done=120, failed=2, tokens=9000, elapsed_s=185.0)
    assert progress_line(ProgressState(counts, tok_s_now=1234.4, eta_s=430.0)) == (
        "[deepseek] sim:in64-out16-c4: 120/400 requests, 2 failed, 3m05s, ~1,234 output tok/s now, ETA 7m10s")
    # No window yet: the mean rate, ETA unknown.
    assert progress_line(ProgressState(counts)).endswith(", ~49 output tok/s now, ETA ?")


def test_closing_line_text() -> None:
    counts = ProgressCounts("sim:in64-out16-c4", total=40, done=40, failed=0, tokens=640, elapsed_s=3.2)
    assert closing_line(counts) == "[deepseek] sim:in64-out16-c4: 40/40 requests, 0 failed, 3.2s, ~200 output tok/s"
    assert closing_line(ProgressCounts("x", total=3)).endswith(": 0/3 requests, 0 failed, 0.0s, ~0 output tok/s")


# -- plain lines at their period ------------------------------------------------------------------

def test_plain_lines_come_at_the_period_then_the_closing_line() -> None:
    lines: list[str] = []
    start = 1000.0
    watch = ProgressWatch(lambda now: ProgressCounts("p:s", 500, done=int(now - start), tokens=int(now - start) * 8,
                                                     elapsed_s=now - start),
                          LineDisplay(lines.append, every_s=30.0), clock=lambda: start + 95.0)
    watch.display.open()
    for second in range(1, 96):
        watch.tick(start + second)
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines] == ["30/500 requests", "60/500 requests",
                                                                       "90/500 requests"]
    assert all(line.endswith("~8 output tok/s now, ETA " + duration_text(500 - n)) for line, n in
               zip(lines, (30, 60, 90)))
    watch.close()
    assert lines[-1] == "[deepseek] p:s: 95/500 requests, 0 failed, 1m35s, ~8 output tok/s"
    assert all(ESC not in line for line in lines)


def test_plain_lines_are_time_driven_on_a_timer() -> None:
    lines: list[str] = []
    progress = Progress("p:s", 100, lines.append, every_s=0.2)
    progress.update(record(0, warmup=True))
    for i in range(5):
        progress.update(record(i))
    time.sleep(1.1)  # no request finishes meanwhile: lines still come
    progress.finish()
    periodic, closing = lines[:-1], lines[-1]
    assert 2 <= len(periodic) <= 8, lines
    assert all(line.startswith("[deepseek] p:s: 5/100 requests, 0 failed") for line in periodic)
    assert closing.startswith("[deepseek] p:s: 5/100 requests, 0 failed, ") and closing.endswith(" output tok/s")
    progress.finish()  # idempotent
    assert len(lines) == len(periodic) + 1


def test_progress_counts_measured_requests_only() -> None:
    lines: list[str] = []
    progress = Progress("p:s", 4, lines.append)
    progress.update(record(0, n_tokens=99, warmup=True))
    progress.update(record(1, n_tokens=10))
    progress.update(record(2, n_tokens=0, failed=True))
    counts = progress.counts()
    assert (counts.done, counts.failed, counts.tokens, counts.total) == (2, 1, 10, 4)
    progress.finish()
    assert len(lines) == 1 and lines[0].startswith("[deepseek] p:s: 2/4 requests, 1 failed, ")


def test_no_output_no_thread() -> None:
    progress = Progress("p:s", 4, None)
    progress.update(record(1))
    progress.finish()
    assert progress.counts().done == 1


# -- the live display ---------------------------------------------------------------------------

def rendered(state: ProgressState, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(live_renderable(state, width))
    return out.getvalue()


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_live_line_fits_the_width_and_keeps_every_figure(width: int) -> None:
    state = ProgressState(ProgressCounts("sim-fast:in64-out16-c4", 40, done=12, failed=1, tokens=192,
                                         elapsed_s=3.0), tok_s_now=64.0, eta_s=7.0)
    text = rendered(state, width)
    assert text.count("\n") == 1 and len(text.rstrip("\n")) <= width, text
    assert text.endswith("12/40  1 failed  64 tok/s now  3.0s  ETA 7.0s\n"), text
    assert text.startswith("[deepsee")  # the label gives way last, cut with an ellipsis
    if width >= 100:
        assert "[deepseek] sim-fast:in64-out16-c4 " in text


def test_live_display_redraws_in_place_and_leaves_one_plain_line(capsys: pytest.CaptureFixture[str]) -> None:
    entered: list[str] = []

    @contextlib.contextmanager
    def writing() -> Iterator[None]:
        entered.append("in")
        yield

    lines: list[str] = []
    output = ProgressOutput(lines.append, LiveTerminal(80, writing, lambda: entered.append("fresh line")))
    counts = ProgressCounts("p:s", 10, done=3, tokens=30, elapsed_s=1.0)
    display = output.display("p:s", 10)
    assert isinstance(display, LiveDisplay)
    watch = ProgressWatch(lambda now: counts, display)
    display.open()
    watch.tick(1.0)
    watch.tick(1.5)
    watch.close()
    drawn = capsys.readouterr().out
    assert entered[:2] == ["in", "fresh line"] and entered.count("in") == 4  # open, 2 refreshes, close
    assert drawn.startswith(ESC + "[?25l") and ESC + "[?25h" in drawn  # the cursor is shown again
    assert drawn.rstrip().endswith(ESC + "[2K")  # the live line erased
    assert "3/10" in drawn
    assert lines == ["[deepseek] p:s: 3/10 requests, 0 failed, 1.0s, ~30 output tok/s"]


def test_plain_output_is_chosen_without_a_terminal() -> None:
    assert isinstance(ProgressOutput(print).display("p:s", 3), LineDisplay)


def test_the_verdict_so_far_shows_while_early_stop_looks() -> None:
    progress = Progress("p:s", 100, None)
    assert "verdict so far" not in progress_line(ProgressState(progress.counts()))
    progress.look("inconclusive")
    assert progress_line(ProgressState(progress.counts())).endswith("verdict so far INCONCLUSIVE")


def test_each_early_stop_look_reports_its_verdict() -> None:
    from pytest_deepseek.serving.judge import early_stop
    from pytest_deepseek.serving.measure import ServingTarget
    from pytest_deepseek.serving.spec import Scenario
    from pytest_deepseek.testing.synthetic import generate_run

    heard: list[str] = []
    scenario = Scenario(input_len=32, output_len=16, concurrency=4, num_prompts=200, early_stop=True,
                        floors={"output_throughput_per_node": 1.0})
    look = early_stop(scenario, ServingTarget(base_url="http://127.0.0.1:1/v1", model="m", api="completions",
                                              simulated=True), looks=20, on_look=heard.append)
    assert look is not None
    run = generate_run(2000.0, seed=1, concurrency=4, num_prompts=200, mean_output_len=16)
    decided = look(run.records, run.timeline)
    assert heard and heard[-1] in ("pass", "inconclusive") and decided == (heard[-1] == "pass")
