"""Package attributes imported on first use.

The plugin imports spec modules of the gate packages at pytest start-up; their heavy parts (numpy,
readers, runners) must not come with them, so the packages export their API lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: attribute `name` comes from submodule `exports[name]`
    on first access, and is cached in the package afterwards."""
    namespace = vars(importlib.import_module(package))

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        namespace[name] = value
        return value

    return getattr_
