"""The serving gate's cases: scenarios of the profiles with the options applied, or an ad-hoc grid."""

from __future__ import annotations

import math

import pytest

from pytest_deepseek.serving.gate import ServingCase, cases, deadlines_for
from pytest_deepseek.serving.records import Deadlines
from pytest_deepseek.settings import Settings
from pytest_deepseek.thresholds import parse_thresholds

THRESHOLDS = """\
version: 1
profiles:
  h800:
    nodes: 2
    confidence: 0.9
    serving:
      defaults: {num_prompts: 200, warmup: 4, dataset: sonnet}
      scenarios:
        - {input_len: 1024, output_len: 256, concurrency: 64}
        - {input_len: 512, output_len: 64, request_rate: 8, early_stop: true}
        - {input_len: 128, output_len: 16, batch_size: 8, num_iters: 3}
"""


def profiles():
    return list(parse_thresholds(THRESHOLDS).profiles.values())


def test_one_case_per_scenario_with_the_ids_of_the_test_names() -> None:
    found = cases(profiles(), Settings())
    assert [c.id for c in found] == ["h800:sonnet-in1024-out256-c64", "h800:sonnet-in512-out64-r8",
                                     "h800:sonnet-in128-out16-b8x3"]
    assert all(isinstance(c, ServingCase) for c in found)
    assert [c.scenario for c in found] == list(profiles()[0].scenarios)  # nothing given, nothing changed


def test_options_beat_the_scenario() -> None:
    settings = Settings(num_prompts=10, warmup=1, dataset="random", early_stop=True, allow_inconclusive=True,
                        concurrency=(4,))
    closed, opened, batch = (c.scenario for c in cases(profiles(), settings))
    assert (closed.num_prompts, closed.warmup, closed.dataset) == (10, 1, "random")
    assert closed.early_stop and closed.allow_inconclusive
    assert closed.concurrency == 4 and opened.concurrency == 4 and opened.request_rate is None
    assert batch.batch_size == 8 and batch.concurrency is None  # a latency batch keeps its shape
    rate = cases(profiles(), Settings(request_rate=(math.inf,)))[0].scenario
    assert rate.request_rate == math.inf and rate.concurrency is None


def test_a_boolean_option_only_switches_on() -> None:
    opened = cases(profiles(), Settings(early_stop=False))[1].scenario
    assert opened.early_stop  # the file's true stays


def test_adhoc_grid_needs_no_thresholds_file() -> None:
    grid = cases([], Settings(input_len=(32, 48), output_len=(8,), concurrency=(2, 4), num_prompts=6))
    assert [c.id for c in grid] == ["adhoc:in32-out8-c2", "adhoc:in32-out8-c4", "adhoc:in48-out8-c2",
                                    "adhoc:in48-out8-c4"]
    scenario = grid[0].scenario
    assert scenario.num_prompts == 6 and scenario.warmup == 2 and scenario.dataset == "random"
    assert grid[0].profile.name == "adhoc" and grid[0].profile.api == "completions"


def test_adhoc_grid_under_the_profiles_takes_their_confidence() -> None:
    grid = cases(profiles(), Settings(output_len=(8,), request_rate=(5.0,), api="chat"))
    assert [c.id for c in grid] == ["h800:in512-out8-r5"]
    assert grid[0].scenario.confidence == 0.9 and grid[0].scenario.num_prompts == 50


@pytest.mark.parametrize("warmup", [0, 3])
def test_warmup_from_the_command_line_is_kept_even_when_zero(warmup: int) -> None:
    assert cases([], Settings(input_len=(8,), warmup=warmup))[0].scenario.warmup == warmup
    assert {c.scenario.warmup for c in cases(profiles(), Settings(warmup=warmup))} == {warmup}


DEADLINES = """\
version: 1
defaults: {stall_timeout_s: 120, timeout_s: 7200}
profiles:
  h800:
    first_byte_timeout_s: 600
    serving:
      defaults: {num_prompts: 10, connect_timeout_s: 5}
      scenarios:
        - {input_len: 64, output_len: 8, concurrency: 2, timeout_s: 1800}
        - {input_len: 32, output_len: 8, concurrency: 2, stall_timeout_s: 60}
  plain:
    serving:
      scenarios:
        - {input_len: 64, output_len: 8, concurrency: 2}
"""


def test_deadlines_layer_option_scenario_profile_file_default() -> None:
    profiles = parse_thresholds(DEADLINES).profiles
    first, second = cases([profiles["h800"]], Settings())
    assert deadlines_for(first, Settings()) == Deadlines(connect_s=5, first_byte_s=600, stall_s=120, total_s=1800)
    assert deadlines_for(second, Settings()) == Deadlines(connect_s=5, first_byte_s=600, stall_s=60, total_s=7200)
    given = Settings(connect_timeout=2.0, first_byte_timeout=30.0, stall_timeout=10.0, request_timeout=90.0)
    assert deadlines_for(first, given) == Deadlines(connect_s=2, first_byte_s=30, stall_s=10, total_s=90)
    plain = cases([profiles["plain"]], Settings())[0]
    assert deadlines_for(plain, Settings()) == Deadlines(stall_s=120, total_s=7200)  # the file's defaults
    assert Deadlines() == Deadlines(connect_s=30, first_byte_s=900, stall_s=300, total_s=3600)
