"""The shared line normaliser and number helpers."""

from __future__ import annotations

import math

import pytest

from pytest_deepseek.training.normalise import (
    StampParser, half_unit, normalise_line, parse_number, printed_token, split_complete_lines)


@pytest.mark.parametrize("raw, text, rank", [
    ("[default3]:Iter(train) [1/2]", "Iter(train) [1/2]", 3),
    ("[rank0]: loss: 1.0", "loss: 1.0", 0),
    ("[node-7.cluster:5]: hello", "hello", 5),
    ("[1,2]<stdout>:step: 3", "step: 3", 2),
    ("\x1b[32mstep: 1\x1b[39m  loss: 2", "step: 1  loss: 2", None),
    ("  2%|▏ | 1/50\r    \r{'loss': 4.03}", "{'loss': 4.03}", None),
    ("[INFO] 2026-11-23 09:48:30,018 text", "[INFO] 2026-11-23 09:48:30,018 text", None),
    ("[2026-11-23 10:00:00] iteration 1/ 2 |", "[2026-11-23 10:00:00] iteration 1/ 2 |", None),
])
def test_normalise_line_strips_noise_and_keeps_rank(raw: str, text: str, rank: int | None) -> None:
    assert normalise_line(raw) == (text, rank)


def test_parse_number_variants() -> None:
    assert parse_number("1,234") == 1234.0
    assert parse_number("1.0E-05") == 1e-05
    assert math.isnan(parse_number("nan")) and math.isnan(parse_number("NaN"))
    assert parse_number("-inf") == -math.inf
    assert parse_number("'4.03'") == 4.03
    with pytest.raises(ValueError):
        parse_number("abc")


def test_half_unit_of_printed_digits() -> None:
    assert half_unit("0.0013") == pytest.approx(5e-05)
    assert half_unit("2.345E+00") == pytest.approx(5e-04)
    assert half_unit("576") == 0.5
    assert printed_token("loss: 0.0013  tflops: 1", "loss") == "0.0013"
    assert printed_token("data_time: 0.5 time: 0.0011", "time") == "0.0011"
    assert printed_token("{'loss': '4.03'}", "loss") == "4.03"


def test_split_complete_lines_keeps_the_partial_tail() -> None:
    lines, rest = split_complete_lines(b"a\nb\nlos")
    assert lines == ["a", "b"] and rest == b"los"
    assert split_complete_lines(b"partial") == ([], b"partial")


def test_stamps_are_parsed_and_cached() -> None:
    sp = StampParser()
    a = sp.parse("2026/11/23 09:34:36 - mm")
    b = sp.parse("2026/11/23 09:34:38 - mm")
    assert a is not None and b is not None and b - a == 2
    c = sp.parse("2026-11-23 09:48:19,113 - x")
    d = sp.parse("2026-11-23 09:48:19,992 - x")
    assert d - c == pytest.approx(0.879)
    assert sp.parse("no stamp here") is None
