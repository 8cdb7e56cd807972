"""Helpers for the real-engine tests: a pytester project with the shipped suites, CPU placement."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_deepseek.engines.servers import split_cpus

SERVER_CPUS, CLIENT_CPUS = split_cpus()


def project(pytester: pytest.Pytester, suites: tuple[str, ...], thresholds: str | None = None) -> Path:
    """A pytester project holding the shipped suite files and, when given, a thresholds file."""
    repo = Path(__file__).resolve().parents[2]
    for name in suites:
        (pytester.path / name).write_text((repo / "suites" / name).read_text())
    if thresholds is not None:
        (pytester.path / "thresholds.yaml").write_text(thresholds)
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    return pytester.path


@contextlib.contextmanager
def on_client_cpus() -> Iterator[None]:
    """Run the block (and the processes it starts) on the CPUs left to the load generator."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CLIENT_CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)
