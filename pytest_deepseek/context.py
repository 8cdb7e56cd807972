"""What a gate needs from the session to run one case: `GateContext`.

Each gate's entry module offers `cases(profiles, settings)` and `run(case, context) -> GateResult`;
the fixtures build the context, so the gates never touch pytest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .locks import exclusive

if TYPE_CHECKING:
    from .endpoint import Deployment, EndpointInfo
    from .report.store import RunFolder
    from .settings import Settings
    from .tokenizers import TextTokenizer

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class SessionDeadline:
    """--deepseek-session-deadline: how long the whole session may run, from its start (wall clock,
    so that xdist workers share the controller's start)."""

    limit_s: float
    started_at: float  # time.time() when the session started

    def left_s(self, now: float | None = None) -> float:
        """Seconds left (negative once passed)."""
        return self.started_at + self.limit_s - (time.time() if now is None else now)

    @property
    def passed(self) -> bool:
        """True once the deadline has passed."""
        return self.left_s() <= 0

    def not_run(self) -> str:
        """The problem of a gate test that starts after the deadline."""
        late = -self.left_s()
        return (f"not run: the session deadline of {self.limit_s:g} s passed {late:.1f} s before this test "
                "started (--deepseek-session-deadline)")

    def reached(self) -> str:
        """The start of the problem of a measurement the deadline cut short."""
        return f"session deadline of {self.limit_s:g} s reached"


@dataclass(frozen=True)
class GateContext:
    """The session's settings, endpoint and results folder, as one gate test sees them.

    `endpoint` is the one the case's profile is measured against (a run may have one per profile);
    `deployment`, when the profile has several URLs, all of them (`endpoint` is its first replica);
    `tokenizer` loads the run's tokenizer on first call (it may raise `TokenizerError`);
    `thresholds_dir` is where relative paths of the thresholds file are taken from; `fingerprint` is
    the session's part of the result's fingerprint (written beside the case, so that a result
    rebuilt from the results folder carries it too); `session_deadline`, when set, is when the
    session must end (a measurement running then stops, a test starting later is not run).
    """

    settings: "Settings"
    folder: "RunFolder"
    endpoint: "EndpointInfo | None"
    nodeid: str
    tokenizer: Callable[[], "TextTokenizer"]
    thresholds_dir: Path | None = None
    progress: ProgressFn | None = None
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    session_deadline: SessionDeadline | None = None
    deployment: "Deployment | None" = None

    @contextlib.contextmanager
    def measuring(self, endpoint: "EndpointInfo") -> Iterator[None]:
        """Hold the endpoint for a measurement: perf runs (and evaluations) against one endpoint
        never overlap, across tests and xdist workers. The lock is the endpoint's own (named from
        its base URL), so runs against different endpoints go on side by side."""
        with exclusive(self.settings.results_dir / f".{endpoint.lock_name}"):
            yield
