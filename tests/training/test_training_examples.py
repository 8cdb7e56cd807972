"""The example run shipped in the package is the committed real run, and it meets the seed target."""

from __future__ import annotations

from pathlib import Path

import pytest_deepseek
from pytest_deepseek.training import evaluate_entry, load_records

from .synth import TOY, TOY_TS

EXAMPLE = Path(pytest_deepseek.__file__).parent / "data" / "examples" / "mmengine-toy"


def test_packaged_example_is_the_committed_run_and_small() -> None:
    for rel in (f"{TOY_TS}/{TOY_TS}.log", f"{TOY_TS}/vis_data/{TOY_TS}.json"):
        assert (EXAMPLE / rel).read_bytes() == (TOY / rel).read_bytes()
    size = sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file())
    assert size < 1_000_000
    assert "example" in (EXAMPLE / "README.md").read_text().lower()


def test_example_meets_the_seed_convergence_target() -> None:
    entry = {"name": "example", "log": str(EXAMPLE),
             "converge": {"metric": "loss", "below": 0.0013, "within": 2000, "statistic": "window_mean", "window": 10},
             "floors": {"tokens_per_sec": 950}}
    res = evaluate_entry(entry, load_records(EXAMPLE))
    assert res.verdict == "pass" and res.metrics["converge.first_crossing_iteration"] == 1067
