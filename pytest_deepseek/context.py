"""What a gate needs from the session to run one case: `GateContext`.

Each gate's entry module offers `cases(profiles, settings)` and `run(case, context) -> GateResult`;
the fixtures build the context, so the gates never touch pytest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .locks import exclusive

if TYPE_CHECKING:
    from .endpoint import EndpointInfo
    from .report.store import RunFolder
    from .settings import Settings
    from .tokenizers import TextTokenizer

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class GateContext:
    """The session's settings, endpoint and results folder, as one gate test sees them.

    `tokenizer` loads the run's tokenizer on first call (it may raise `TokenizerError`);
    `thresholds_dir` is where relative paths of the thresholds file are taken from; `fingerprint` is
    the session's part of the result's fingerprint (written beside the case, so that a result
    rebuilt from the results folder carries it too).
    """

    settings: "Settings"
    folder: "RunFolder"
    endpoint: "EndpointInfo | None"
    nodeid: str
    tokenizer: Callable[[], "TextTokenizer"]
    thresholds_dir: Path | None = None
    progress: ProgressFn | None = None
    fingerprint: Mapping[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def measuring(self, endpoint: "EndpointInfo") -> Iterator[None]:
        """Hold the endpoint for a measurement: perf runs (and evaluations) against one endpoint
        never overlap, across tests and xdist workers."""
        with exclusive(self.settings.results_dir / f".{endpoint.lock_name}"):
            yield
