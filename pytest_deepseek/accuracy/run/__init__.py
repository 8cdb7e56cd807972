"""Backend runners behind one call: `run_backend(name, ...) -> results folder`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...credentials import KeyLike
from ...tls import SYSTEM, TlsPolicy
from ..bundled import bundled_datasets_dir
from ..generation import generation_settings
from ..spec import EVALSCOPE, LM_EVAL, OPENCOMPASS
from . import evalscope, lm_eval, opencompass
from .common import INSTALL, BackendError, BackendMissing, RunRequest

RUNNERS: dict[str, Callable[[RunRequest], Path]] = {
    EVALSCOPE: evalscope.run,
    OPENCOMPASS: opencompass.run,
    LM_EVAL: lm_eval.run,
}


def run_backend(
    backend: str,
    *,
    base_url: str,
    model: str,
    api: str = "chat",
    api_key: KeyLike = None,
    datasets: Sequence[str],
    data_dir: Path | None = None,
    work_dir: Path,
    generation: Mapping[str, Any] | None = None,
    tokenizer_path: Path | None = None,
    opencompass_python: str | None = None,
    limit: int | None = None,
    timeout_s: float | None = None,
    tls: TlsPolicy = SYSTEM,
) -> Path:
    """Evaluate `datasets` on the endpoint with `backend`; returns the folder `read_results` reads.

    `data_dir` holds the datasets in the backend's layout (default: the bundled tiny sets);
    `generation` is the profile's `generation:` map. A backend that is not installed raises
    BackendMissing with the install command; a failed run raises BackendError naming its log.
    `tls` reaches the backend's HTTP client (a backend that cannot skip verification refuses
    `verify=False` with a BackendError). The key is never written to the backend's folder.
    """
    if backend not in RUNNERS:
        raise BackendError(f"unknown accuracy backend {backend!r}; known: {', '.join(RUNNERS)}")
    if api not in ("chat", "completions"):
        raise BackendError(f"api must be 'chat' or 'completions', got {api!r}")
    if not datasets:
        raise BackendError("no datasets to evaluate")
    request = RunRequest(
        base_url=base_url,
        model=model,
        api=api,
        api_key=api_key,
        datasets=tuple(datasets),
        data_dir=Path(data_dir) if data_dir is not None else bundled_datasets_dir(backend),
        work_dir=Path(work_dir),
        generation=generation_settings(generation),
        tokenizer_path=None if tokenizer_path is None else Path(tokenizer_path),
        opencompass_python=opencompass_python,
        limit=limit,
        timeout_s=timeout_s,
        tls=tls,
    )
    request.work_dir.mkdir(parents=True, exist_ok=True)
    return RUNNERS[backend](request)


__all__ = ["INSTALL", "RUNNERS", "BackendError", "BackendMissing", "RunRequest", "run_backend"]
