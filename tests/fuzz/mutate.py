"""Mutation strategies shared by the fuzz targets: hostile values, JSON retyping, line and byte edits.

Structure-aware fuzzing starts from real examples and breaks them the way files and streams break
in practice: a field dropped or of the wrong type, a number printed as `nan` or with 5,000 digits,
a line cut short or prefixed by a launcher, bytes that are not UTF-8, a write cut mid-way.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

# Numbers as logs and files print them when something went wrong (or as no parser expects them).
NASTY_NUMBERS: tuple[str, ...] = (
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e-999", "", "-", "+", ".", "e",
    "E5", "1e", "1..2", "--1", "1,2", "1,234,567.5", "0x1f", "１２", "٣", "½", "9" * 400, "9" * 5000,
)
# Text that means something to one of the parsers, or to none.
NASTY_TEXT: tuple[str, ...] = (
    "", " ", "\t", "\x00", "\r", "\x1b[31m", "\ufeff", "\u2028", "你好", "[", "]", "{", "}", ":", "|", ",", "/",
    "'", '"', "\\", "null", "true", "[DONE]", "data:", "Iter(train) [", "Epoch(train) [", "{ Epoch:[", "step:[",
    "iteration", "step:", "loss:", "samples/s/p", "skipped=", "SamplesPerSec=", "time (ms) | fwd:", "'loss':",
    '"log_history"', "%",
)
LAUNCHER_PREFIXES: tuple[str, ...] = (
    "[rank3]:", "[default0]:", "[host-1:2]: ", "[1,0]<stdout>:", "\x1b[32m", "progress 10%\r", "[", "[rank", "\r",
)
# Integers JSON and YAML can carry but a float cannot hold, and ints at the 64-bit edges.
BIG_INTS: tuple[int, ...] = (2**63, -(2**63) - 1, 10**400, -(10**400))
# JSON texts no Python value serialises to: they are spliced into documents verbatim.
RAW_JSON: tuple[str, ...] = (
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 5000, "[" * 3000 + "]" * 3000,
    '{"a":' * 3000 + "1" + "}" * 3000, '"\\ud800"', '"\\u0000"',
)
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)


def pick(values: Sequence[Any]) -> st.SearchStrategy[Any]:
    """One of `values` (like `sampled_from`, without printing long values in reports)."""
    def nth(index: int) -> Any:
        return values[index]

    return st.integers(0, len(values) - 1).map(nth)


def json_scalars() -> st.SearchStrategy[Any]:
    """Any JSON scalar, hostile ones included (NaN, infinities, huge integers, number-like text)."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.sampled_from(BIG_INTS), st.floats(),
        st.text(max_size=12), pick(NASTY_NUMBERS),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Small JSON documents of any shape."""
    return st.recursive(
        json_scalars(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )


def paths_of(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into `doc` (the root `()` included), depth first."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from paths_of(value, (*prefix, index))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated_tree(draw: st.DrawFn, seed: Any, focus: frozenset[str] = frozenset(), max_edits: int = 3,
                 raw_texts: Sequence[str] = RAW_JSON) -> tuple[Any, dict[str, str]]:
    """`seed` (plain JSON-like data) with fields dropped, retyped, wrapped, emptied or marked for raw text.

    Paths ending in a key of `focus` (the fields a reader relies on) are picked half of the time.
    Returns the data and `{marker: text}`: each marker string stands for a text from `raw_texts` to
    splice into the serialised document in place of the quoted marker.
    """
    doc = copy.deepcopy(seed)
    raw: dict[str, str] = {}
    for _ in range(draw(st.integers(0, max_edits))):
        paths = list(paths_of(doc))
        focused = [p for p in paths if p and p[-1] in focus]
        path = draw(st.sampled_from(focused if focused and draw(st.booleans()) else paths))
        op = draw(st.sampled_from(("retype", "drop", "raw", "wrap", "empty")))
        if op == "raw":
            marker = f"RAW{len(raw)}MARK"
            raw[marker] = draw(pick(raw_texts))
            value: Any = marker
        elif op == "retype":
            value = draw(json_values())
        elif op == "wrap":
            value = draw(pick(([_at(doc, path)], {"value": _at(doc, path)}, str(_at(doc, path))[:50])))
        else:
            value = draw(st.sampled_from(({}, [], "", None, 0)))
        if not path:
            doc = value
        elif op == "drop":
            del _parent(doc, path)[path[-1]]
        else:
            _parent(doc, path)[path[-1]] = value
    return doc, raw


@st.composite
def mutated_document(draw: st.DrawFn, seed: Any, focus: frozenset[str] = frozenset(), max_edits: int = 3) -> str:
    """`seed` mutated by `mutated_tree`, as JSON text (raw JSON spliced in: NaN, deep nesting, ...)."""
    doc, raw = draw(mutated_tree(seed, focus, max_edits))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    for marker, replacement in raw.items():
        text = text.replace(json.dumps(marker), replacement)
    return text


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated_line(draw: st.DrawFn, line: str) -> str:
    """One line with a number replaced, a slice spliced, a cut (anywhere or after a word), or a prefix."""
    op = draw(st.sampled_from(("number", "number", "splice", "cut", "words", "prefix")))
    if op == "words":
        words = line.split(" ")
        return " ".join(words[:draw(st.integers(0, len(words)))]) + draw(st.sampled_from(("", " ")))
    if op == "number":
        spans = [m.span() for m in _NUMBER.finditer(line)]
        if spans:
            start, end = draw(st.sampled_from(spans))
            return line[:start] + draw(pick(NASTY_NUMBERS)) + line[end:]
        op = "splice"
    if op == "prefix":
        return draw(st.sampled_from(LAUNCHER_PREFIXES)) + line
    start = draw(st.integers(0, len(line)))
    if op == "cut":
        return line[:start]
    end = draw(st.integers(start, min(len(line), start + 12)))
    insert = draw(st.sampled_from(NASTY_TEXT) | st.text(max_size=8))
    return line[:start] + insert + line[end:]


@st.composite
def mutated_lines(draw: st.DrawFn, lines: Sequence[str], max_edits: int = 4) -> list[str]:
    """`lines` with a few lines edited, deleted, duplicated, swapped or inserted."""
    out = list(lines)
    for _ in range(draw(st.integers(0, max_edits))):
        op = draw(st.sampled_from(("edit", "edit", "edit", "delete", "duplicate", "swap", "insert")))
        if not out:
            op = "insert"
        i = draw(st.integers(0, max(0, len(out) - 1)))
        if op == "edit":
            out[i] = draw(mutated_line(out[i]))
        elif op == "delete":
            del out[i]
        elif op == "duplicate":
            out.insert(i, out[i])
        elif op == "swap":
            j = draw(st.integers(0, len(out) - 1))
            out[i], out[j] = out[j], out[i]
        else:
            out.insert(i, draw(st.sampled_from(NASTY_TEXT) | st.text(max_size=40)))
    return out


@st.composite
def corrupted_bytes(draw: st.DrawFn, data: bytes, max_edits: int = 2) -> bytes:
    """`data` cut short, with bytes flipped, or with invalid UTF-8 and control bytes inserted."""
    for _ in range(draw(st.integers(0, max_edits))):
        op = draw(st.sampled_from(("cut", "flip", "insert")))
        at = draw(st.integers(0, len(data)))
        if op == "cut":
            data = data[:at]
        elif op == "flip" and at < len(data):
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        else:
            data = data[:at] + draw(st.sampled_from((b"\xff", b"\xc3", b"\xe4\xbd", b"\x00", b"\r", b"\n", b"\r\n"))) \
                + data[at:]
    return data


def split_points(size: int) -> st.SearchStrategy[list[int]]:
    """Sorted cut positions in `[0, size]`: where a stream's reads end."""
    return st.lists(st.integers(0, size), max_size=8).map(sorted)


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """`data` split at `points` (empty pieces kept: a read may be empty)."""
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


LEAKED_INTERNALS = ("Traceback", "object has no attribute", "NoneType", "not subscriptable", "unsupported operand",
                    "object is not iterable", "unhashable type", "referenced before assignment")


def assert_clear(message: str) -> None:
    """An error message that says what is wrong, not which Python operation failed."""
    assert message.strip(), "empty error message"
    leaked = [m for m in LEAKED_INTERNALS if m in message]
    assert not leaked, f"error message leaks an internal failure ({leaked[0]}): {message[:300]}"


def write_tree(root: Path, files: Iterable[tuple[str, bytes]]) -> None:
    """Write generated `(relative path, bytes)` files under `root` (a path that a shorter one already
    made a folder of is left as the folder)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            path.write_bytes(data)
