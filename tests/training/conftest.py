"""Shared fixtures of the training tests."""

from __future__ import annotations

import pytest

from pytest_deepseek.training import TrainingLog, load_records

from .synth import TOY


@pytest.fixture(scope="session")
def toy_log() -> TrainingLog:
    """The committed real mmengine run (vis_data JSON preferred)."""
    return load_records(TOY)
