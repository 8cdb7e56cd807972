"""Load YAML into plain Python values while remembering the line of every key and item.

Errors in a thresholds file must name the line; PyYAML's node tree has the marks, so the file is
composed into nodes once and converted here, keeping a map from a value's path to its 1-based line.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class YamlSyntaxError(Exception):
    """The text is not valid YAML; `line` is 1-based (or None when unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class LinedDocument:
    """The converted document and where each path came from."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


# Far more values than any thresholds file holds; aliases of aliases could otherwise expand a short
# text into billions of values.
MAX_VALUES = 100_000


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], constructor: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if len(lines) > MAX_VALUES:
        raise YamlSyntaxError(f"more than {MAX_VALUES} values (aliases expanding too far?)", node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, constructor)
            if not isinstance(key, Hashable):
                raise YamlSyntaxError("a mapping key must be a scalar", key_node.start_mark.line + 1)
            if key in result:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            key_str = str(key)
            result[key_str] = _convert(value_node, (*path, key_str), lines, constructor)
            lines[(*path, key_str)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, constructor) for i, item in enumerate(node.value)]
    return _construct(node, constructor)


def _construct(node: yaml.Node, constructor: yaml.SafeLoader) -> Any:
    """The value of a scalar (or of a tagged collection used as a key); a value PyYAML resolves but
    Python cannot hold (`2020-13-45`, an integer of 5000 digits) is a syntax error on its line."""
    try:
        return constructor.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        shown = node.value if isinstance(node.value, str) else node.tag
        reason = str(exc).split(";")[0]  # Python's advice after the ";" is not for the file's author
        raise YamlSyntaxError(f"cannot read the value {shown[:40]!r}: {reason}", node.start_mark.line + 1) from exc


def load_lined(text: str) -> LinedDocument:
    """Parse `text` (one YAML document) into plain values plus a path → line map."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError as exc:
        raise YamlSyntaxError("collections nested too deeply", None) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(f"{exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None) from exc
    if node is None:
        return LinedDocument(data=None)
    lines: dict[Path_, int] = {}
    constructor = yaml.SafeLoader("")
    try:
        data = _convert(node, (), lines, constructor)
    except RecursionError as exc:
        raise YamlSyntaxError("collections nested too deeply", None) from exc
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise YamlSyntaxError(str(exc.problem), mark.line + 1 if mark else None) from exc
    return LinedDocument(data=data, lines=lines)
