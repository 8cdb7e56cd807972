"""Paths named in the thresholds file: relative to the file's folder; `package:` = data shipped inside."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE_PREFIX = "package:"


def resolve_path(value: str, base_dir: Path | None) -> Path:
    """`package:examples/x` → the installed package's `data/examples/x`; a relative path → under `base_dir`."""
    if value.startswith(PACKAGE_PREFIX):
        parts = value[len(PACKAGE_PREFIX):].split("/")
        return Path(str(resources.files("pytest_deepseek").joinpath("data", *parts)))
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path
