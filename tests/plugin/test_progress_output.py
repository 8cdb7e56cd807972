"""Progress of a serving run as users see it: plain lines in a log, a live line on a terminal."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

from pytest_deepseek.testing import LOADED_BOX

from .helpers import make_project

SMALL = """\
version: 1
profiles:
  sim-fast:
    endpoint: sim://fast?step_base_ms=8
    serving:
      defaults: {dataset: random, warmup: 1, client_health: %s}
      scenarios:
        - {input_len: 32, output_len: 16, concurrency: 2, num_prompts: 24, ceilings: {error_rate: 0.5}}
""" % LOADED_BOX
ARGS = ("--endpoint=sim://fast?step_base_ms=8", "-p", "no:cacheprovider")
CLOSING = re.compile(r"^\[deepseek\] sim-fast:in32-out16-c2: 24/24 requests, 0 failed, [\d.]+s, ~[\d,]+ output tok/s$",
                     re.MULTILINE)
CURSOR_CODES = ("\x1b[?25l", "\x1b[?25h", "\x1b[2K", "\x1b[1A")  # hide/show cursor, erase line, cursor up


def test_a_log_gets_the_closing_line_and_no_escape_codes(pytester: pytest.Pytester) -> None:
    make_project(pytester, SMALL)
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=1)
    out = result.stdout.str() + result.stderr.str()
    assert len(CLOSING.findall(out)) == 1, out
    assert "\x1b" not in out


def test_colours_without_a_terminal_still_get_plain_lines(pytester: pytest.Pytester) -> None:
    make_project(pytester, SMALL)
    result = pytester.runpytest_subprocess(*ARGS, "--color=yes")
    result.assert_outcomes(passed=1)
    out = re.sub(r"\x1b\[[\d;]*m", "", result.stdout.str())  # pytest's own colours
    assert len(CLOSING.findall(out)) == 1, out
    assert not any(code in result.stdout.str() for code in CURSOR_CODES)


def run_in_terminal(pytester: pytest.Pytester, *args: str, timeout_s: float = 120.0) -> str:
    """pytest in a pseudo-terminal of 100 columns: everything it wrote there."""
    import fcntl
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("PY_COLORS", "NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=pytester.path, env=env,
                            stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        proc.wait(timeout=30)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal")
def test_a_terminal_gets_a_live_line_then_one_plain_line(pytester: pytest.Pytester) -> None:
    make_project(pytester, SMALL)
    out = run_in_terminal(pytester, *ARGS)
    assert "1 passed" in re.sub(r"\x1b\[[\d;]*m", "", out), out
    hide, show = out.find("\x1b[?25l"), out.rfind("\x1b[?25h")
    assert 0 <= hide < show and out.count("\x1b[?25l") == out.count("\x1b[?25h") == 1, repr(out)
    live = out[hide:show]
    assert "[deepseek] sim-fast:in32-out16-c2" in live  # the label whole: the terminal's 100 columns
    assert "/24" in live and "tok/s now" in live
    after = out[show:]
    plain = after.replace("\r\n", "\n")
    closing = CLOSING.findall(re.sub(r"\x1b\[[?\d;]*[A-Za-z]|\r", "", plain))
    assert len(closing) == 1, repr(after)
    assert "tok/s now" not in after  # the live line was erased, not left behind
