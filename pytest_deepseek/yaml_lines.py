"""Load YAML into plain Python values while remembering the line of every key and item.

Errors in a thresholds file must name the line; PyYAML's node tree has the marks, so the file is
composed into nodes once and converted here, keeping a map from a value's path to its 1-based line.
"""

from __future__ import annotations

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


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], constructor: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if isinstance(key, (dict, list)):
                raise YamlSyntaxError("a mapping key must be a scalar", key_node.start_mark.line + 1)
            if key in result:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            key_str = str(key)
            result[key_str] = _convert(value_node, (*path, key_str), lines, constructor)
            lines[(*path, key_str)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def load_lined(text: str) -> LinedDocument:
    """Parse `text` (one YAML document) into plain values plus a path → line map."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
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
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise YamlSyntaxError(str(exc.problem), mark.line + 1 if mark else None) from exc
    return LinedDocument(data=data, lines=lines)
