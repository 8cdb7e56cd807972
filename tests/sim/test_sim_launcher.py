"""The simulator as a subprocess: launcher start/stop, the command line, in-process server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pytest_deepseek.sim.config import SimConfigError
from pytest_deepseek.sim.launcher import start_sim
from pytest_deepseek.sim.server import SimServer
from pytest_deepseek.sim.truth import read_truth
from pytest_deepseek.sim.urls import parse_sim_url


def test_start_request_stop(tmp_path: Path) -> None:
    truth, log = tmp_path / "truth.jsonl", tmp_path / "sim.log"
    sim = start_sim("sim://fast?max_num_seqs=4&seed=9", truth_path=truth, log_path=log)
    with sim:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url.endswith("/v1")
        assert sim.model == "deepseek-ai/DeepSeek-V3" and sim.config.max_num_seqs == 4
        assert sim.truth_path == truth
        resp = httpx.post(sim.base_url + "/completions", json={"model": sim.model, "prompt": "hi", "max_tokens": 5},
                          headers={"x-request-id": "launch-1"}, timeout=10)
        assert resp.status_code == 200
    assert sim.process.returncode == 0  # SIGTERM handled: clean exit, truth flushed
    assert read_truth(truth)["launch-1"].completion_tokens == resp.json()["usage"]["completion_tokens"]
    assert "preset fast" in log.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.base_url + "/models", timeout=2)


def test_bad_url_fails_before_starting() -> None:
    with pytest.raises(SimConfigError, match="presets: deepseek-r1, deepseek-v3, deepseek-v3-mtp, fast"):
        start_sim("sim://nope", truth_path=None, log_path=None)


def test_command_line_rejects_unknown_key() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest_deepseek.sim", "--preset", "fast", "--set", "bogus=1"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unknown sim option 'bogus'" in proc.stderr


def test_in_process_server_in_asyncio() -> None:
    async def main() -> dict:
        async with SimServer(parse_sim_url("sim://fast")) as server:
            async with httpx.AsyncClient(timeout=10) as client:
                resp = await client.post(server.base_url + "/chat/completions",
                                         json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
                return resp.json()

    data = asyncio.run(main())
    assert data["usage"]["completion_tokens"] == 3
