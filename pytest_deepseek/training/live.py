"""``follow_and_evaluate``: judge a run while it is written, optionally running the command too."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from .assemble import Assembler
from .command import TrainProcess
from .evaluate import evaluate_entry
from .records import TrainingLog, TrainingLogError
from .result import Check, TrainingResult, overall
from .sources import PathsLike, Source, resolve_sources
from .stats import median_interval, quantile
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
        asm = Assembler(str(entry.get("dialect", "auto")), entry.get("rank"))
    except ValueError as exc:
        raise TrainingLogError(str(exc)) from None
    proc: TrainProcess | None = None
    if train_cmd:
        out_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="deepseek-train-"))
        proc = TrainProcess(train_cmd, out_dir)
        say(f"started: {train_cmd} (output kept in {proc.output_path})")
    follow = paths if paths else (str(proc.output_path) if proc else None)
    if follow is None:
        raise TrainingLogError("nothing to follow: give a log path or a training command")
    # when following the log the command writes, its own output is still read for crash messages
    extra = (str(proc.output_path),) if proc is not None and paths else ()
    follower = _Follower(follow, asm, extra)
    hang_floor = hang_min_s if hang_min_s is not None else 2 * poll_s
    start = time.monotonic()
    arrivals: list[float] = []
    n_seen, n_events = 0, 0
    result: TrainingResult | None = None
    reason = ""
    log = asm.snapshot()
    try:
        while True:
            exit_code = proc.poll() if proc else None
            if follower.poll():
                log = asm.snapshot()
                if len(log.records) != n_seen or len(log.events) != n_events:
                    now = time.monotonic()
                    arrivals.append(now)
                    n_seen, n_events = len(log.records), len(log.events)
                    result = evaluate_entry(entry, log, ended=False)
                    last = log.records[-1].iteration if log.records else None
                    say(f"{n_seen} records (last iteration {last}): {result.verdict}")
                    if result.decided and (stop_when_decided or proc is None):
                        reason = "decided"
                        break
            if exit_code is not None:
                follower.poll(force=True)
                reason = "exited"
                break
            now = time.monotonic()
            if now - start > timeout_s:
                reason = "timeout"
                break
            step = _median_step_s(log, arrivals)
            if arrivals and step is not None:
                limit = max(hang_factor * step, hang_floor)
                if now - arrivals[-1] > limit:
                    reason = f"hang: no new record for {now - arrivals[-1]:.1f} s (> {hang_factor:g} x median step {step:.3g} s)"
                    break
            time.sleep(poll_s)
    except BaseException:
        if proc is not None:
            proc.stop(grace_s)  # never leave the training command behind
        raise
    finally:
        follower.close()
    exit_info: dict[str, Any] = {}
    if proc is not None:
        if reason == "exited":
            code = proc.wait()
        else:
            code = proc.stop(grace_s)
            say(f"stopped the training command ({proc.signal_sent}), exit code {code}")
        exit_info = {"train_cmd": train_cmd, "train_cmd_exit_code": code, "train_cmd_output": str(proc.output_path),
                     "stopped_early": proc.stopped_by_us, "signal": proc.signal_sent}
    log = asm.snapshot(finishing=True)
    if asm.total_lines == 0 or asm.dialect is None:
        err = asm.detection_error() if asm.undetected_lines() else TrainingLogError(
            f"no training log lines in {follow}")
        checks = [Check("log", "", "", None, None, "error", "", None, None, str(err), final=True)]
        final = TrainingResult(str(entry.get("name", "training")), checks, {}, "error")
    else:
        final = evaluate_entry(entry, log, ended=reason == "exited" or (reason == "decided" and proc is None))
    elapsed = time.monotonic() - start
    extra: list[Check] = []
    if reason.startswith("hang"):
        extra.append(Check("hang", "records", "<", None, None, "fail", "time since last record",
                           None, log.records[-1].quote() if log.records else None, reason, final=True))
    elif reason == "timeout" and not final.decided:
        extra.append(Check("timeout", "wall time", "<=", timeout_s, elapsed, "inconclusive", "wall time", None,
                           None, f"wall limit {timeout_s:g} s reached before a verdict", final=True))
    if proc is not None:
        code = exit_info["train_cmd_exit_code"]
        ok = proc.stopped_by_us or code == 0
        how = f"stopped after the verdict ({proc.signal_sent})" if proc.stopped_by_us else "ended"
        extra.append(Check("train_cmd", "exit code", "==", 0, float(code), "pass" if ok else "fail", "exit code",
                           None, None, f"{train_cmd!r} {how}, exit code {code}", final=True))
    final.checks.extend(extra)
    final.verdict = overall(final.checks)
    final.metrics.update(exit_info)
    final.metrics.update({"follow_reason": reason, "follow_elapsed_s": elapsed,
                          "truncations": sum(t.truncations for t in follower.tails.values()),
                          "rotations": sum(t.rotations for t in follower.tails.values())})
    say(f"{final.name}: {final.verdict} ({reason})")
    return final
