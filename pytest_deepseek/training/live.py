"""``follow_and_evaluate``: judge a run while it is written, optionally running the command too."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..verdict import Check
from .assemble import Assembler
from .command import TrainProcess
from .evaluate import evaluate_entry
from .records import TrainingLog, TrainingLogError
from .result import TrainingResult, error_check, training_check
from .sources import PathsLike, Source, resolve_sources
from .spec import AUTO_DIALECT, CHECK_HANG, CHECK_LOG, CHECK_TIMEOUT, CHECK_TRAIN_CMD
from ..stats.summary import quantile
from .stats import median_interval
from .tail import FileTail

RESOLVE_EVERY_S = 1.0


class _Follower:
    """Tails every file the paths resolve to (re-resolving: files may appear later)."""

    def __init__(self, paths: PathsLike, asm: Assembler, events_only: tuple[str, ...] = ()) -> None:
        self.paths = paths
        self.asm = asm
        self.events_only = events_only
        self.tails: dict[str, FileTail] = {}
        self._resolved_at = -1e9

    def poll(self, force: bool = False) -> int:
        """Feed new complete lines to the assembler; return how many arrived."""
        now = time.monotonic()
        if force or now - self._resolved_at >= RESOLVE_EVERY_S or len(self.tails) <= len(self.events_only):
            self._resolved_at = now
            try:
                sources: list[Source] = resolve_sources(self.paths)
            except TrainingLogError:
                sources = []
            sources += [Source(p, "events") for p in self.events_only]
            for src in sources:
                if src.path not in self.tails:
                    self.tails[src.path] = FileTail(src.path)
                    self.asm.add_file(src.path, src.role, src.rank)
                else:
                    self.asm.set_role(src.path, src.role)
        n = 0
        for path, tail in self.tails.items():
            lines, first = tail.poll()
            if lines:
                n += len(lines)
                self.asm.feed_text(path, "\n".join(lines) + "\n", first)
        return n

    def close(self) -> None:
        for t in self.tails.values():
            t.close()


def _median_step_s(log: TrainingLog, arrivals: list[float]) -> float | None:
    """The typical time between records: step time x logging interval, or the arrival gaps."""
    recent = log.records[-200:]
    steps = sorted(r.metrics["step_time_s"] for r in recent if r.metrics.get("step_time_s"))
    interval = median_interval([r.iteration for r in recent]) or 1
    gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:]))
    cands = [quantile(steps, 0.5) * interval] if steps else []
    if gaps:
        cands.append(quantile(gaps, 0.5))
    return max(cands) if cands else None


def follow_and_evaluate(
    entry: Mapping[str, Any],
    paths: PathsLike | None,
    *,
    poll_s: float = 0.5,
    timeout_s: float = 3600.0,
    hang_factor: float = 10.0,
    train_cmd: str | None = None,
    stop_when_decided: bool = False,
    on_progress: Callable[[str], None] | None = None,
    output_dir: str | Path | None = None,
    hang_min_s: float | None = None,
    grace_s: float = 10.0,
) -> TrainingResult:
    """Follow a live log until a verdict is certain, the wall ``timeout_s``, a hang, or the end of
    ``train_cmd``.

    Without ``train_cmd`` it stops as soon as the verdict is certain. With ``train_cmd`` the
    command runs (stdout and stderr kept in ``<output_dir>/train_cmd.log``); its output is followed
    unless ``paths`` name the log it writes; with ``stop_when_decided`` it is ended (SIGTERM, then
    SIGKILL after ``grace_s``) once the verdict is certain. A hang is no new record for
    ``hang_factor`` x the median step time (at least ``hang_min_s``, default 2 polls).
    """
    say = on_progress or (lambda _msg: None)
    try:
        asm = Assembler(str(entry.get("dialect", AUTO_DIALECT)), entry.get("rank"))
    except ValueError as exc:
        raise TrainingLogError(str(exc)) from None
    proc = _launch(train_cmd, output_dir, say) if train_cmd else None
    follow = paths if paths else (str(proc.output_path) if proc else None)
    if follow is None:
        raise TrainingLogError("nothing to follow: give a log path or a training command")
    # when following the log the command writes, its own output is still read for crash messages
    follower = _Follower(follow, asm, (str(proc.output_path),) if proc is not None and paths else ())
    pace = _Pace(poll_s, timeout_s, hang_factor, hang_min_s if hang_min_s is not None else 2 * poll_s)
    start = time.monotonic()
    try:
        # without a command to run to its end, a certain verdict ends the watch
        reason = _watch(entry, follower, asm, proc, pace, stop_when_decided or proc is None, say, start)
    except BaseException:
        if proc is not None:
            proc.stop(grace_s)  # never leave the training command behind
        raise
    finally:
        follower.close()
    exit_info = _end_command(proc, train_cmd, reason, grace_s, say) if proc is not None else {}
    final, log = _final_result(entry, asm, follow, ended=reason == "exited" or (reason == "decided" and proc is None))
    elapsed = time.monotonic() - start
    closing = [_stop_check(final, reason, log, timeout_s, elapsed)]
    if proc is not None:
        closing.append(_command_check(proc, str(train_cmd), exit_info["train_cmd_exit_code"]))
    final.checks.extend(c for c in closing if c is not None)
    final.metrics.update(exit_info)
    final.metrics.update({"follow_reason": reason, "follow_elapsed_s": elapsed,
                          "truncations": sum(t.truncations for t in follower.tails.values()),
                          "rotations": sum(t.rotations for t in follower.tails.values())})
    say(f"{final.name}: {final.verdict} ({reason})")
    return final


@dataclass(frozen=True)
class _Pace:
    """How often to look, how long to wait in all, and when silence is a hang."""

    poll_s: float
    timeout_s: float
    hang_factor: float
    hang_floor_s: float


def _launch(train_cmd: str, output_dir: str | Path | None, say: Callable[[str], None]) -> TrainProcess:
    out_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="deepseek-train-"))
    proc = TrainProcess(train_cmd, out_dir)
    say(f"started: {train_cmd} (output kept in {proc.output_path})")
    return proc


def _watch(entry: Mapping[str, Any], follower: _Follower, asm: Assembler, proc: TrainProcess | None, pace: _Pace,
           stop_on_verdict: bool, say: Callable[[str], None], start: float) -> str:
    """Poll until a reason to stop: `decided`, `exited`, `timeout` or `hang: ...`."""
    arrivals: list[float] = []
    n_seen, n_events = 0, 0
    log = asm.snapshot()
    while True:
        exit_code = proc.poll() if proc else None
        if follower.poll():
            log = asm.snapshot()
            if len(log.records) != n_seen or len(log.events) != n_events:
                arrivals.append(time.monotonic())
                n_seen, n_events = len(log.records), len(log.events)
                result = evaluate_entry(entry, log, ended=False)
                last = log.records[-1].iteration if log.records else None
                say(f"{n_seen} records (last iteration {last}): {result.verdict}")
                if result.decided and stop_on_verdict:
                    return "decided"
        if exit_code is not None:
            follower.poll(force=True)
            return "exited"
        now = time.monotonic()
        if now - start > pace.timeout_s:
            return "timeout"
        hang = _hang(log, arrivals, now, pace)
        if hang:
            return hang
        time.sleep(pace.poll_s)


def _hang(log: TrainingLog, arrivals: list[float], now: float, pace: _Pace) -> str:
    """`hang: ...` when no record arrived for hang_factor x the median step (at least the floor)."""
    step = _median_step_s(log, arrivals)
    if arrivals and step is not None:
        limit = max(pace.hang_factor * step, pace.hang_floor_s)
        if now - arrivals[-1] > limit:
            return (f"hang: no new record for {now - arrivals[-1]:.1f} s "
                    f"(> {pace.hang_factor:g} x median step {step:.3g} s)")
    return ""


def _end_command(proc: TrainProcess, train_cmd: str | None, reason: str, grace_s: float,
                 say: Callable[[str], None]) -> dict[str, Any]:
    """Wait for a command that ended, stop one that did not; what happened, for the metrics."""
    if reason == "exited":
        code = proc.wait()
    else:
        code = proc.stop(grace_s)
        say(f"stopped the training command ({proc.signal_sent}), exit code {code}")
    return {"train_cmd": train_cmd, "train_cmd_exit_code": code, "train_cmd_output": str(proc.output_path),
            "stopped_early": proc.stopped_by_us, "signal": proc.signal_sent}


def _final_result(entry: Mapping[str, Any], asm: Assembler, follow: PathsLike,
                  ended: bool) -> tuple[TrainingResult, TrainingLog]:
    """The entry evaluated on everything read (an ERROR when no log line was recognised)."""
    log = asm.snapshot(finishing=True)
    if asm.total_lines == 0 or asm.dialect is None:
        err = asm.detection_error() if asm.undetected_lines() else TrainingLogError(
            f"no training log lines in {follow}")
        return TrainingResult(str(entry.get("name", "training")), [error_check(CHECK_LOG, str(err))], {}), log
    return evaluate_entry(entry, log, ended=ended), log


def _stop_check(result: TrainingResult, reason: str, log: TrainingLog, timeout_s: float,
                elapsed: float) -> Check | None:
    """A hang fails; a wall limit reached before the verdict was certain is inconclusive."""
    if reason.startswith("hang"):
        return training_check(CHECK_HANG, "fail", reason, metric="records", op="<",
                              statistic="time since last record",
                              record=log.records[-1].quote() if log.records else None, final=True)
    if reason == "timeout" and not result.decided:
        return training_check(CHECK_TIMEOUT, "inconclusive", f"wall limit {timeout_s:g} s reached before a verdict",
                              metric="wall time", op="<=", threshold=timeout_s, value=elapsed, statistic="wall time",
                              final=True)
    return None


def _command_check(proc: TrainProcess, train_cmd: str, code: int) -> Check:
    """The training command must end with 0, unless the gate stopped it after the verdict."""
    ok = proc.stopped_by_us or code == 0
    how = f"stopped after the verdict ({proc.signal_sent})" if proc.stopped_by_us else "ended"
    return training_check(CHECK_TRAIN_CMD, "pass" if ok else "fail", f"{train_cmd!r} {how}, exit code {code}",
                          metric="exit code", op="==", threshold=0, value=float(code), statistic="exit code",
                          final=True)
