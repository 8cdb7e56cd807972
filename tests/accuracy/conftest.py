"""Shared paths for the accuracy tests (the `eval_backend` marker is registered by the plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "data" / "eval-results"


@pytest.fixture
def results_dir() -> Path:
    """The real result folders of evalscope, OpenCompass and lm-eval runs."""
    return RESULTS
