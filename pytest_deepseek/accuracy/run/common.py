"""What every backend runner shares: errors, install hints, offline environment, the child process.

The API key reaches a backend only through its child's environment, never a file in the results
folder; whatever the backend itself writes there (logs that echo a server's error body) is scrubbed
of the key when the child ends, and so is the log tail an error message quotes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...credentials import KeyLike, redact, redact_bytes
from ...tls import SYSTEM, TlsPolicy
from ..generation import GenerationSettings
from ..spec import EVALSCOPE, LM_EVAL, OPENCOMPASS

INSTALL = {
    EVALSCOPE: 'pip install "pytest-deepseek[evalscope]"   # evalscope==1.14.1',
    LM_EVAL: 'pip install "pytest-deepseek[lm-eval]"   # lm-eval[api]==0.4.13',
    OPENCOMPASS: (
        "python -m venv /opt/opencompass && /opt/opencompass/bin/pip install opencompass==0.5.4 "
        '"pyarrow<22" "math-verify[antlr4_11_0]"   # then pass --deepseek-opencompass-python /opt/opencompass/bin/python'
    ),
}


class BackendError(RuntimeError):
    """An evaluation backend could not run or did not finish; the message says why and where the log is."""


class BackendMissing(BackendError):
    """The backend is not installed; the message carries the exact install command."""


@dataclass(frozen=True)
class RunRequest:
    """Everything a runner needs, resolved: the endpoint, the data, the settings, where to write."""

    base_url: str  # ends with /v1
    model: str
    api: str  # "chat" | "completions"
    api_key: KeyLike = field(repr=False)
    datasets: tuple[str, ...]
    data_dir: Path
    work_dir: Path
    generation: GenerationSettings
    tokenizer_path: Path | None
    opencompass_python: str | None
    limit: int | None
    timeout_s: float | None = None
    tls: TlsPolicy = SYSTEM


def require_module(module: str, backend: str) -> None:
    """Raise BackendMissing (with the install command) when `module` is not importable here."""
    if importlib.util.find_spec(module) is None:
        raise BackendMissing(
            f"the {backend} backend is not installed (no module {module!r}); install it with:\n  {INSTALL[backend]}"
        )


def api_base(url: str) -> str:
    """The OpenAI base URL ending in `/v1` (as evalscope and OpenCompass want it)."""
    url = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url if url.endswith("/v1") else url + "/v1"


def offline_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: no hub downloads, local traffic never through a proxy."""
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NO_PROXY": ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"])),
        "PYTHONIOENCODING": "utf-8",
    })
    env.update(extra or {})
    return env


def run_child(cmd: Sequence[str], *, log_path: Path, env: Mapping[str, str], cwd: Path,
              timeout_s: float | None, what: str, secrets: Sequence[KeyLike] = ()) -> None:
    """Run a backend process with its output in `log_path`; BackendError names the log on failure.

    When it ends, however it ends, every file under `cwd` and `log_path` is scrubbed of `secrets`.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with log_path.open("w", encoding="utf-8") as log:
            try:
                proc = subprocess.run(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                                      timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise BackendError(f"{what} did not finish within {timeout_s:.0f} s; log: {log_path}") from None
    finally:
        scrub_tree(cwd, secrets)
        scrub_tree(log_path, secrets)
    if proc.returncode != 0:
        tail = redact(_tail(log_path), secrets)
        raise BackendError(
            f"{what} exited with status {proc.returncode} after {time.monotonic() - started:.0f} s; "
            f"log: {log_path}\n{tail}"
        )


def scrub_tree(path: Path, secrets: Sequence[KeyLike]) -> None:
    """Replace every form of `secrets` by `***` in the file `path` or the files under it."""
    if not any(secrets) or not path.exists():
        return
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    for file in files:
        try:
            data = file.read_bytes()
            clean = redact_bytes(data, secrets)
            if clean != data:
                file.write_bytes(clean)
        except OSError:
            continue  # vanished meanwhile (a backend's temporary file)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def fresh_dir(parent: Path, name: str) -> Path:
    """A new `parent/name-<timestamp>` folder, so results of earlier runs never mix in."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    path = parent / f"{name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = parent / f"{name}-{stamp}-{n}"
    path.mkdir(parents=True)
    return path
