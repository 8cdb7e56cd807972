"""The `training:` entry is declared once: the schema fragment and `read_entry` agree."""

from __future__ import annotations

from dataclasses import fields

import pytest

from pytest_deepseek.thresholds import ThresholdsError, parse_thresholds
from pytest_deepseek.training.dialects import DIALECT_NAMES, canonical
from pytest_deepseek.training.spec import (
    DIALECT_ALIASES,
    DIALECT_CHOICES,
    TRAINING_ENTRY,
    ConvergeSpec,
    DivergeSpec,
    EntrySpec,
    FailFastSpec,
    PlateauSpec,
    read_entry,
)

HEAD = "version: 1\nprofiles:\n  a:\n    training:\n      - name: x\n"


def load(body: str):
    return parse_thresholds(HEAD + body)


@pytest.mark.parametrize(("key", "cls"), [("converge", ConvergeSpec), ("diverge", DivergeSpec),
                                          ("plateau", PlateauSpec), ("fail_fast", FailFastSpec)])
def test_each_section_schema_has_exactly_its_dataclass_fields(key: str, cls: type) -> None:
    assert set(TRAINING_ENTRY.fields[key].fields) == {f.name for f in fields(cls)}


def test_the_entry_schema_is_the_dataclass_plus_the_loader_keys() -> None:
    declared = {f.name for f in fields(EntrySpec)} - {"bounds"}
    assert set(TRAINING_ENTRY.fields) == declared | {"log", "dialect", "rank", "floors", "ceilings", "example",
                                                     "description"}
    assert TRAINING_ENTRY.required == ("name",)
    assert TRAINING_ENTRY.fields["converge"].required == ("below",)
    assert TRAINING_ENTRY.fields["diverge"].required == ("ratio",)
    assert TRAINING_ENTRY.fields["plateau"].required == ("patience",)  # below falls back on converge.below


def test_defaults_come_from_the_dataclasses() -> None:
    spec = read_entry({"converge": {"below": 1, "metric": "lm_loss"}, "diverge": {"ratio": 2},
                       "plateau": {"patience": 3}, "warmup_iters": 7})
    assert spec.converge == ConvergeSpec(below=1.0, metric="lm_loss")
    assert spec.diverge == DivergeSpec(ratio=2.0, metric="lm_loss", after=7)  # fallbacks: converge.metric, warmup
    assert spec.plateau == PlateauSpec(patience=3, below=1.0, metric="lm_loss")
    assert spec.fail_fast.metrics == ("loss", "grad_norm", "lm_loss")
    assert spec.speed_statistic == "median" and spec.min_records == 3 and spec.speed_decide_after is None


@pytest.mark.parametrize(("entry", "message"), [
    ({"converge": {"below": "low"}}, "converge.below must be a number, got 'low'"),
    ({"converge": {"below": 1, "statistic": "mean"}}, "converge.statistic must be one of raw, window_mean, ema"),
    ({"diverge": {"window": 3}}, "diverge.ratio is required"),
    ({"plateau": {"patience": 2}}, "plateau.below is required (or converge.below)"),
    ({"floors": {"tokens_per_sec.p11": 1}}, "floors.tokens_per_sec.p11: unknown statistic 'p11'"),
    ({"fail_fast": {"skipped_iterations": -1}}, "fail_fast.skipped_iterations must be a whole number >= 0"),
])
def test_read_entry_names_the_key(entry: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        read_entry(entry)
    assert message in str(info.value)


def test_a_null_skipped_iterations_switches_that_check_off() -> None:
    assert read_entry({"fail_fast": {"skipped_iterations": None}}).fail_fast.skipped_iterations is None
    assert read_entry({}).fail_fast.skipped_iterations == 0


def test_the_schema_checks_bound_statistics_and_plateau_thresholds_with_the_line() -> None:
    with pytest.raises(ThresholdsError, match=r":8: profiles\.a\.training\[0\]\.floors\.tokens_per_sec\.p11: "
                                              "unknown statistic 'p11'"):
        load("        floors:\n          tokens_per_sec: 1\n          tokens_per_sec.p11: 1\n")
    with pytest.raises(ThresholdsError, match=r":6: profiles\.a\.training\[0\]\.plateau: plateau needs below"):
        load("        plateau: {patience: 2}\n")
    assert load("        converge: {below: 1}\n        plateau: {patience: 2}\n").profiles["a"].training


def test_one_list_of_dialect_names() -> None:
    assert DIALECT_CHOICES == ("auto", *DIALECT_NAMES, *DIALECT_ALIASES)
    assert all(canonical(alias) in DIALECT_NAMES for alias in DIALECT_ALIASES)
    with pytest.raises(ThresholdsError, match="did you mean 'megatron'"):
        load("        dialect: megatorn\n")
