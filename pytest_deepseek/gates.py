"""The three gates, listed once: their kind, the fixtures that carry a case and run it, their marker,
and their entry module (imported only when a test asks for the gate).

Each entry module offers `cases(profiles, settings)` and `run(case, context) -> GateResult`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from .verdict import GateKind


@dataclass(frozen=True)
class Gate:
    """One gate as the plugin sees it."""

    kind: GateKind
    description: str

    @property
    def case_fixture(self) -> str:
        return f"{self.kind}_case"

    @property
    def run_fixture(self) -> str:
        return f"{self.kind}_run"

    @property
    def marker(self) -> str:
        return f"deepseek_{self.kind}"

    def module(self) -> ModuleType:
        """`pytest_deepseek.<kind>.gate`."""
        return importlib.import_module(f"pytest_deepseek.{self.kind}.gate")


GATES: tuple[Gate, ...] = (
    Gate("serving", "a serving measurement against the endpoint (never run concurrently with another)"),
    Gate("training", "a training-log gate"),
    Gate("accuracy", "an accuracy gate"),
)
GATES_BY_KIND: dict[str, Gate] = {gate.kind: gate for gate in GATES}
