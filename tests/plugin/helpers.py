"""Helpers for plugin scenarios: a pytester project with the shipped suites and a thresholds file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def make_project(pytester: Any, thresholds: str, suites: tuple[str, ...] = ("test_serving.py",)) -> None:
    """A project folder with the shipped suite files and `thresholds` as thresholds.yaml."""
    for name in suites:
        (pytester.path / name).write_text((REPO / "suites" / name).read_text())
    (pytester.path / "thresholds.yaml").write_text(thresholds)
    (pytester.path / "pytest.ini").write_text("[pytest]\n")


def latest_run(pytester: Any) -> Path:
    """The folder `deepseek-results/latest` names."""
    root = pytester.path / "deepseek-results"
    return root / (root / "latest").read_text().strip()


def summary(pytester: Any) -> dict[str, Any]:
    """The latest run's summary.json."""
    return json.loads((latest_run(pytester) / "summary.json").read_text())


def records(pytester: Any) -> list[dict[str, Any]]:
    """The latest run's request records (not the scenarios' start and end lines)."""
    path = latest_run(pytester) / "records.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if "type" not in line]
