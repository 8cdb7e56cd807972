"""Real servers for the integration tests: each started once per session, stopped by its PID at the end.

Venvs and the tiny model are cached under `$DEEPSEEK_ENGINE_CACHE` (default
`~/.cache/pytest-deepseek/engines`). A failing test shows the tail of the server log it used.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_deepseek.engines.cache import cache_root
from pytest_deepseek.engines.launch import launch
from pytest_deepseek.engines.servers import RunningServer, ServerStartError
from pytest_deepseek.engines.tiny_model import TinyModelError
from pytest_deepseek.engines.venvs import VenvError

from .helpers import SERVER_CPUS

_SERVERS: dict[str, RunningServer] = {}


def _start(fixture: str, kind: str, tmp_path_factory: pytest.TempPathFactory, *,
           by_path: bool = False) -> RunningServer:
    work = tmp_path_factory.mktemp(fixture)
    try:
        server = launch(kind, work, cache_root(), by_path=by_path, cpus=SERVER_CPUS if kind == "vllm" else None)
    except (ServerStartError, VenvError, TinyModelError) as exc:
        pytest.fail(f"cannot start {kind}: {exc}", pytrace=False)
    _SERVERS[fixture] = server
    return server


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """vLLM (CPU build) serving the tiny DeepSeek-V3 as `tiny-deepseek-v3`."""
    server = _start("vllm_server", "vllm", tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def transformers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """transformers serve pinned to the tiny model, exposed as a hub id so /v1/models lists it."""
    server = _start("transformers_server", "transformers-serve", tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def transformers_server_by_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """transformers serve pinned to the tiny model's folder path (the way most people start it)."""
    server = _start("transformers_server_by_path", "transformers-serve", tmp_path_factory, by_path=True)
    yield server
    server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    fixtures = getattr(item, "fixturenames", ())
    for name, server in _SERVERS.items():
        if name in fixtures:
            report.sections.append((f"{server.command.kind} server log (last lines of {server.log_path})",
                                    server.log_tail()))
