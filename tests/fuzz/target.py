"""A fuzz target: a strategy for inputs and a check that holds for every one of them.

The test modules of this folder list their targets; pytest runs each under the CI profile of
`conftest.py`, `benchmarks/fuzz.py` runs the same targets with a larger budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st


@dataclass(frozen=True)
class Target:
    """`check(example)` returns normally for every example `strategy` draws, or the parser has a bug."""

    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]

    def run(self) -> None:
        """Run the check on the examples of the active Hypothesis settings profile."""
        given(self.strategy)(self.check)()
