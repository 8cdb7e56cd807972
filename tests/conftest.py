"""Shared test configuration: pytester for running the plugin as users do; `full_disk`.

With DEEPSEEK_REQUIRE_BACKENDS=1 (set by CI), tests marked `eval_backend` may not be skipped for a
missing evaluation backend: the run stops with a usage error instead, so a green CI run means the
real evalscope and lm-eval runs happened.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

pytest_plugins = ["pytester"]

REQUIRED_BACKEND_MODULES = ("evalscope", "lm_eval")
PROJECT_MARKERS = (
    "real_engine: needs a real inference server started by the test (slow; deselect with -m 'not real_engine')",
    "eval_backend: runs a real evaluation backend (evalscope, lm-eval, OpenCompass)",
    "soak: holds the client at steady load for a minute (deselect with -m 'not soak')",
)


def pytest_configure(config: pytest.Config) -> None:
    for marker in PROJECT_MARKERS:
        config.addinivalue_line("markers", marker)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DEEPSEEK_REQUIRE_BACKENDS") != "1":
        return
    if not any(item.get_closest_marker("eval_backend") for item in items):
        return
    missing = [name for name in REQUIRED_BACKEND_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"DEEPSEEK_REQUIRE_BACKENDS=1 but {', '.join(missing)} cannot be imported: "
            'pip install -e ".[test,evalscope,lm-eval]"'
        )
    if not os.environ.get("OPENCOMPASS_PYTHON"):
        raise pytest.UsageError("DEEPSEEK_REQUIRE_BACKENDS=1 but OPENCOMPASS_PYTHON is not set")


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every held-records spill of this process fails as on a full disk, from the first record on."""
    from pytest_deepseek.serving import held

    def full(self: object, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(held, "MEMORY_BUDGET_BYTES", 1)
    monkeypatch.setattr(held._SpillFile, "append", full)
