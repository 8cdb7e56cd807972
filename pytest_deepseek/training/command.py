"""``--deepseek-train-cmd``: run a training command, keep its output in a file, stop it on request."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


class TrainProcess:
    """A command in its own process group; stdout and stderr go to one kept file."""

    def __init__(self, cmd: str, output_dir: Path) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.cmd = cmd
        self.output_path = output_dir / "train_cmd.log"
        self._out = open(self.output_path, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # block-buffered stdout would hide progress
        self.proc = subprocess.Popen(cmd, shell=True, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.started = time.monotonic()
        self.stopped_by_us = False
        self.signal_sent: str | None = None

    def poll(self) -> int | None:
        """The exit code once it has ended, else None."""
        return self.proc.poll()

    def stop(self, grace_s: float = 10.0) -> int:
        """SIGTERM the process group, SIGKILL after ``grace_s``; return the exit code."""
        if self.proc.poll() is None:
            self.stopped_by_us = True
            self._signal(signal.SIGTERM)
            self.signal_sent = "SIGTERM"
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.signal_sent = "SIGKILL"
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Wait for a natural end; return the exit code."""
        code = self.proc.wait()
        self._out.close()
        return code
