"""A tiny declarative schema for the thresholds file, with errors that name the line and the key.

Each mapping in the file is checked against a `Mapping_` of named `Field`s: an unknown key is an
error suggesting the nearest valid key, a wrong type or an impossible value an error naming the
expected type or range. No I/O here: the caller gives the data and a path → line map.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Path_ = tuple[str | int, ...]


class SchemaError(Exception):
    """One validation problem: `path` is where in the document, `message` what is wrong."""

    def __init__(self, path: Path_, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# Beyond this an int has no float value: `math.isnan` and the float arithmetic downstream overflow.
_LARGEST_FLOAT = int(sys.float_info.max)

_KINDS = {type(None): "null (no value)", bool: "true/false", int: "a number", float: "a number", str: "text",
          list: "a list", dict: "a mapping"}


def _kind(value: Any) -> str:
    """What a YAML value is, in the file's words (`null (no value)`, `a list`, `text`, ...)."""
    return _KINDS.get(type(value), type(value).__name__)


def dotted(path: Path_) -> str:
    """`('profiles', 'a', 'serving', 'scenarios', 0)` → `profiles.a.serving.scenarios[0]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top>"


class Spec:
    """Base class: `check(value, path)` returns the (possibly normalised) value or raises."""

    description = "a value"

    def check(self, value: Any, path: Path_) -> Any:
        raise NotImplementedError


@dataclass
class Number(Spec):
    """An int or float (bool excluded) within optional bounds; `allow_inf` admits `inf`."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    integer: bool = False
    allow_inf: bool = False

    @property
    def description(self) -> str:  # type: ignore[override]
        kind = "a whole number" if self.integer else "a number"
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum:g}")
        return kind + (f" {' and '.join(parts)}" if parts else "")

    def check(self, value: Any, path: Path_) -> Any:
        if isinstance(value, str) and self.allow_inf and value.strip().lower() in ("inf", "infinity"):
            return math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(path, f"expected {self.description}, got {value!r}")
        if isinstance(value, int) and abs(value) > _LARGEST_FLOAT:
            raise SchemaError(path, f"expected {self.description}, got a number of {len(str(abs(value)))} digits")
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            raise SchemaError(path, f"expected {self.description}, got {value!r}")
        if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
            raise SchemaError(path, f"expected {self.description}, got {value!r}")
        if self.minimum is not None:
            too_small = value <= self.minimum if self.exclusive_minimum else value < self.minimum
            if too_small:
                raise SchemaError(path, f"expected {self.description}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise SchemaError(path, f"expected {self.description}, got {value!r}")
        return int(value) if self.integer else value


@dataclass
class Text(Spec):
    """A string, optionally one of `choices`."""

    choices: Sequence[str] | None = None

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(self.choices)}" if self.choices else "a string"

    def check(self, value: Any, path: Path_) -> Any:
        if not isinstance(value, str):
            if self.choices is None and isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise SchemaError(path, f"expected {self.description}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            near = difflib.get_close_matches(value, list(self.choices), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SchemaError(path, f"{value!r} is not {self.description}{hint}")
        return value


@dataclass
class Flag(Spec):
    """A boolean."""

    description = "true or false"

    def check(self, value: Any, path: Path_) -> Any:
        if not isinstance(value, bool):
            raise SchemaError(path, f"expected true or false, got {value!r}")
        return value


@dataclass
class ListOf(Spec):
    """A list whose items all match `item`; a single scalar is accepted as a one-item list."""

    item: Spec
    min_items: int = 0
    scalar_ok: bool = False

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"a list of {self.item.description}"

    def check(self, value: Any, path: Path_) -> Any:
        if self.scalar_ok and not isinstance(value, (list, dict)):
            value = [value]
        if not isinstance(value, list):
            raise SchemaError(path, f"expected {self.description}, got {_kind(value)}")
        if len(value) < self.min_items:
            raise SchemaError(path, f"expected at least {self.min_items} item(s)")
        return [self.item.check(v, (*path, i)) for i, v in enumerate(value)]


@dataclass
class MapOf(Spec):
    """A mapping with free keys (checked by `key_check`, when given) and values matching `value`."""

    value: Spec
    key_check: Callable[[str, Path_], None] | None = None
    description = "a mapping"

    def check(self, value: Any, path: Path_) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(path, f"expected a mapping, got {_kind(value)}")
        out = {}
        for key, item in value.items():
            if self.key_check is not None:
                self.key_check(key, (*path, key))
            out[key] = self.value.check(item, (*path, key))
        return out


@dataclass
class Mapping_(Spec):
    """A mapping with a fixed set of known keys; `required` keys must be present."""

    fields: dict[str, Spec]
    required: Sequence[str] = ()
    validate: Callable[[dict[str, Any], Path_], None] | None = None
    what: str = "section"
    description = "a mapping"

    def check(self, value: Any, path: Path_) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise SchemaError(path, f"expected a mapping for this {self.what}, got {_kind(value)}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in self.fields:
                near = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.5)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise SchemaError(
                    (*path, key), f"unknown key {key!r} in {self.what}{hint} (valid: {', '.join(sorted(self.fields))})"
                )
            out[key] = self.fields[key].check(item, (*path, key))
        for key in self.required:
            if key not in out:
                raise SchemaError(path, f"missing required key {key!r} in {self.what}")
        if self.validate is not None:
            self.validate(out, path)
        return out


@dataclass
class AnyOf(Spec):
    """The first of `options` that accepts the value."""

    options: Sequence[Spec] = field(default_factory=list)

    @property
    def description(self) -> str:  # type: ignore[override]
        return " or ".join(o.description for o in self.options)

    def check(self, value: Any, path: Path_) -> Any:
        for option in self.options:
            try:
                return option.check(value, path)
            except SchemaError:
                continue
        raise SchemaError(path, f"expected {self.description}, got {value!r}")


@dataclass
class Nullable(Spec):
    """`null` (meaning: unset, e.g. to clear a default) or a value matching `inner`."""

    inner: Spec

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"{self.inner.description} or null"

    def check(self, value: Any, path: Path_) -> Any:
        return None if value is None else self.inner.check(value, path)


# Value specs shared by every section of the thresholds file.
POSITIVE_INT = Number(minimum=1, integer=True)
NONNEG_INT = Number(minimum=0, integer=True)
FRACTION = Number(minimum=0, maximum=1)
CONFIDENCE = Number(minimum=0.5, maximum=0.9999)
THRESHOLD_VALUE = Number()


def name_check(valid: Sequence[str], what: str = "metric") -> Callable[[str, Path_], None]:
    """A key check for a map whose keys must be one of `valid` (suggests the nearest)."""
    def check(key: str, path: tuple[str | int, ...]) -> None:
        if key not in valid:
            near = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise SchemaError(path, f"unknown {what} {key!r}{hint}")

    return check
