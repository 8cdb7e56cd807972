"""Thresholds files that fuzzing (tests/fuzz/test_thresholds_fuzz.py) found the loader crashing on.

Each must be a `ThresholdsError` naming the file, the line when there is one, and what is wrong.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pytest_deepseek.thresholds import ThresholdsError, parse_thresholds
from pytest_deepseek.yaml_lines import MAX_VALUES

PROFILE = "version: 1\nprofiles:\n  a:\n"
# Ten levels of aliases of ten aliases: ten billion values once expanded.
ALIAS_BOMB = "version: 1\nprofiles: {}\nx:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an int beyond a float: OverflowError in the range checks
        ("version: " + "9" * 400 + "\nprofiles: {}\n",
         ":1: version: expected a whole number >= 1 and <= 1, got a number of 400 digits"),
        (PROFILE + "    nodes: " + "9" * 400 + "\n",
         ":4: profiles.a.nodes: expected a whole number >= 1, got a number of 400 digits"),
        (PROFILE + "    confidence: -" + "9" * 400 + "\n", ":4: profiles.a.confidence: expected a number >= 0.5"),
        # values PyYAML resolves but Python cannot build: ValueError from the constructor
        ("version: " + "9" * 5000 + "\n", ":1: not valid YAML: cannot read the value '9999"),
        (PROFILE + "    model: 2020-13-45\n",
         ":4: not valid YAML: cannot read the value '2020-13-45': month must be in 1..12"),
        (PROFILE + "    nodes: !!int x\n", ":4: not valid YAML: cannot read the value 'x'"),
        # RecursionError while composing, or while converting a self-referencing alias
        ("version: 1\nprofiles: " + "[" * 3000 + "]" * 3000 + "\n",
         "t.yaml: not valid YAML: collections nested too deeply"),
        ("version: 1\ndefaults: {confidence: &x [*x]}\nprofiles: {}\n",
         "t.yaml: not valid YAML: collections nested too deeply"),
        # an unhashable key: TypeError
        ("version: 1\nprofiles:\n  ? !!set {a}\n  : 1\n", ":3: not valid YAML: a mapping key must be a scalar"),
        # a section left empty: the message named a Python type (NoneType)
        ("version: 1\nprofiles:\n", ":2: profiles: expected a mapping, got null (no value)"),
        (PROFILE + "    serving:\n      scenarios:\n        - {input_len: 8, output_len: 8, floors: [1]}\n",
         ":6: profiles.a.serving.scenarios[0].floors: expected a mapping, got a list"),
    ],
)
def test_found_by_fuzzing_is_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(ThresholdsError) as info:
        parse_thresholds(text, Path("t.yaml"))
    assert str(info.value).startswith("t.yaml"), str(info.value)
    assert expected in str(info.value)
    assert "NoneType" not in str(info.value) and "set_int_max_str_digits" not in str(info.value)


def test_aliases_expanding_without_end_are_refused_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(ThresholdsError, match=f"more than {MAX_VALUES} values"):
        parse_thresholds(ALIAS_BOMB, Path("t.yaml"))
    assert time.perf_counter() - start < 10  # about 0.2 s; expanding it all would take hours
