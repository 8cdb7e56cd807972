"""Live following: a real writer process, partial lines, truncation, rotation, NaN, hang, --deepseek-train-cmd."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_deepseek.training import follow_and_evaluate
from pytest_deepseek.training.tail import FileTail

from .synth import TOY_LOG

WRITER = Path(__file__).with_name("log_writer.py")
CONVERGE = {"name": "toy", "dialect": "mmengine",
            "converge": {"metric": "loss", "below": 0.0013, "within": 2000, "statistic": "window_mean", "window": 10}}


def start_writer(dst: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), "--src", str(TOY_LOG), "--dst", str(dst), *args])


def test_file_tail_complete_lines_truncation_rotation(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntw")
    t = FileTail(str(p))
    assert t.poll() == (["one"], 1)
    with p.open("ab") as fh:
        fh.write(b"o\nthree\n")
    assert t.poll() == (["two", "three"], 2)
    p.write_bytes(b"x\n")  # truncated and rewritten shorter
    assert t.poll() == (["x"], 1) and t.truncations == 1
    with p.open("ab") as fh:
        fh.write(b"last-of-old\n")
    p.rename(tmp_path / "a.log.1")
    p.write_bytes(b"new\n")
    assert t.poll() == (["last-of-old"], 2)
    assert t.poll() == (["new"], 1) and t.rotations == 1
    t.close()


def test_follow_survives_partial_lines_truncation_and_rotation(tmp_path: Path) -> None:
    dst = tmp_path / "run.log"
    w = start_writer(dst, "--start", "1001", "--stop", "1100", "--delay", "0.01", "--partial",
                     "--truncate-at", "1020", "--rotate-at", "1040")
    try:
        res = follow_and_evaluate(CONVERGE, str(dst), poll_s=0.02, timeout_s=20, hang_factor=50)
    finally:
        w.kill()
        w.wait()
    conv = next(c for c in res.checks if c.name == "converge")
    assert res.verdict == "pass" and conv.details["details"]["first_crossing_iteration"] == 1067
    assert res.metrics["follow_reason"] == "decided"
    assert res.metrics["truncations"] >= 1 and res.metrics["rotations"] >= 1
    assert res.metrics["corrupt_lines"] == 0  # a half-written line is never parsed


def test_nan_mid_run_fails_within_one_poll(tmp_path: Path) -> None:
    dst, stamps = tmp_path / "run.log", tmp_path / "stamps.txt"
    poll = 0.05
    w = start_writer(dst, "--start", "1", "--stop", "400", "--delay", "0.01", "--nan-at", "60",
                     "--stamps", str(stamps))
    try:
        res = follow_and_evaluate(CONVERGE, str(dst), poll_s=poll, timeout_s=20, hang_factor=50)
        decided_at = time.time()
    finally:
        w.kill()
        w.wait()
    ff = res.checks[0]
    assert res.verdict == "fail" and ff.name == "fail_fast" and ff.details["iterations"] == [60, 60]
    written = {int(a): float(b) for a, b in (line.split() for line in stamps.read_text().splitlines())}
    assert decided_at - written[60] < poll + 0.25


def test_hang_is_detected(tmp_path: Path) -> None:
    dst = tmp_path / "run.log"
    w = start_writer(dst, "--start", "1", "--stop", "400", "--delay", "0.01", "--hang-at", "30")
    try:
        t0 = time.monotonic()
        res = follow_and_evaluate(CONVERGE, str(dst), poll_s=0.02, timeout_s=20, hang_factor=10,
                                  hang_min_s=0.3)
        took = time.monotonic() - t0
    finally:
        w.kill()
        w.wait()
    hang = next(c for c in res.checks if c.name == "hang")
    assert res.verdict == "fail" and hang.verdict == "fail" and took < 5
    assert "no new record" in hang.message and "Iter(train) [  29/2000]" in hang.details["record"]


def test_timeout_without_records_is_reported(tmp_path: Path) -> None:
    res = follow_and_evaluate(CONVERGE, str(tmp_path / "never.log"), poll_s=0.02, timeout_s=0.2)
    assert res.verdict == "error" and "no training log lines" in res.checks[0].message


def test_train_cmd_is_stopped_when_decided(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {WRITER} --src {TOY_LOG} --dst - --start 1040 --delay 0.01"
    progress: list[str] = []
    t0 = time.monotonic()
    res = follow_and_evaluate(CONVERGE, None, poll_s=0.02, timeout_s=30, hang_factor=50, train_cmd=cmd,
                              stop_when_decided=True, on_progress=progress.append, output_dir=tmp_path)
    took = time.monotonic() - t0
    assert res.verdict == "pass" and res.metrics["stopped_early"] is True
    assert res.metrics["train_cmd_exit_code"] == -15 and res.metrics["signal"] == "SIGTERM"
    assert took < 5  # the full replay would take ~10 s
    kept = Path(res.metrics["train_cmd_output"]).read_text()
    assert "Iter(train) [1067/2000]" in kept
    assert any("stopped the training command" in p for p in progress)


def test_train_cmd_failure_without_a_verdict(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {WRITER} --src {TOY_LOG} --dst - --start 1 --stop 20 --delay 0 --exit-code 3"
    res = follow_and_evaluate(CONVERGE, None, poll_s=0.02, timeout_s=30, train_cmd=cmd, output_dir=tmp_path)
    tc = next(c for c in res.checks if c.name == "train_cmd")
    conv = next(c for c in res.checks if c.name == "converge")
    assert tc.verdict == "fail" and "exit code 3" in tc.message and res.metrics["train_cmd_exit_code"] == 3
    assert conv.verdict == "fail" and "finished log ends at iteration 20" in conv.message
    assert res.verdict == "fail"


@pytest.mark.parametrize("stop", [False])
def test_train_cmd_runs_to_the_end_without_stop_when_decided(tmp_path: Path, stop: bool) -> None:
    cmd = f"{sys.executable} {WRITER} --src {TOY_LOG} --dst - --start 1050 --stop 1090 --delay 0"
    res = follow_and_evaluate(CONVERGE, None, poll_s=0.02, timeout_s=30, train_cmd=cmd,
                              stop_when_decided=stop, output_dir=tmp_path)
    assert res.verdict == "pass" and res.metrics["stopped_early"] is False
    assert res.metrics["train_cmd_exit_code"] == 0 and res.metrics["last_iteration"] == 1090


def test_train_cmd_writing_its_own_log_and_crashing(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    script = tmp_path / "crash.py"
    script.write_text(
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, {str(WRITER)!r}, '--src', {str(TOY_LOG)!r}, '--dst', {str(log)!r},"
        " '--start', '1', '--stop', '30', '--delay', '0'])\n"
        "raise RuntimeError('CUDA error: an illegal memory access was encountered')\n")
    res = follow_and_evaluate(CONVERGE, str(log), poll_s=0.02, timeout_s=30, train_cmd=f"{sys.executable} {script}",
                              output_dir=tmp_path / "out")
    ff = res.checks[0]
    assert res.verdict == "fail" and ff.details["statistic"] == "crash" and "illegal memory access" in ff.message
    assert res.metrics["train_cmd_exit_code"] == 1 and res.metrics["last_iteration"] == 30


def test_vis_data_json_appearing_later_replaces_the_text_log(tmp_path: Path) -> None:
    ts = tmp_path / "20261123_124356"
    (ts / "vis_data").mkdir(parents=True)
    text = ts / "20261123_124356.log"
    text.write_text("".join(line + "\n" for line in TOY_LOG.read_text().splitlines()[:200]))
    json_lines = (TOY_LOG.parent / "vis_data" / "20261123_124356.json").read_text().splitlines()

    def later() -> None:
        time.sleep(0.3)
        (ts / "vis_data" / "20261123_124356.json").write_text("\n".join(json_lines[:1100]) + "\n")

    import threading
    th = threading.Thread(target=later)
    th.start()
    res = follow_and_evaluate(CONVERGE, str(tmp_path), poll_s=0.02, timeout_s=10, hang_factor=1e6, hang_min_s=5)
    th.join()
    assert res.verdict == "pass" and res.metrics["converge.first_crossing_iteration"] == 1067
    assert res.metrics["files"][0].endswith(".log") and not any("repeated" in w for w in res.warnings)
    assert res.metrics["converge.printed_half_unit"] < 1e-10  # the full-precision JSON values were used
