"""The thresholds file: valid documents resolve into profiles and scenarios; bad ones name line and key."""

import math
from pathlib import Path

import pytest

from pytest_deepseek.thresholds import ThresholdsError, load_thresholds, parse_thresholds

GOOD = """\
version: 1
defaults:
  confidence: 0.9
  error_budget: 0.02
profiles:
  v3-h800:
    model: deepseek-ai/DeepSeek-V3
    engine: lmdeploy
    nodes: 2
    devices_per_node: 8
    serving:
      defaults: {dataset: random, concurrency: 1024, num_prompts: 10000, warmup: 16}
      scenarios:
        - input_len: 2048
          output_len: 1024
          floors: {output_throughput_per_node: 871.78, input_throughput_per_node: 1744.75}
        - input_len: 1024
          output_len: 1024
          dataset: sonnet
          concurrency: 4
          num_prompts: 100
          ceilings: {ttft_ms.p99: 2000, tpot_ms.p99: 80, error_rate: 0.0}
        - input_len: 128
          output_len: 128
          request_rate: inf
          concurrency: null
    training:
      - name: xtuner
        log: work_dirs/x
        converge: {metric: loss, below: 0.0013, within: 2000, statistic: window_mean, window: 10}
    accuracy:
      backend: opencompass
      datasets:
        - {name: cluewsc-dev, min: 96.0}
        - {name: cluewsc-test, reference: 95.59, tolerance: 1.0}
  other:
    nodes: 1
"""


def test_good_file_resolves_profiles_and_scenarios():
    thresholds = parse_thresholds(GOOD)
    profile = thresholds.profiles["v3-h800"]
    assert (profile.nodes, profile.devices_per_node, profile.confidence, profile.error_budget) == (2, 8, 0.9, 0.02)
    first, second, third = profile.scenarios
    assert first.ident == "in2048-out1024-c1024"
    assert first.num_prompts == 10000 and first.warmup == 16 and first.confidence == 0.9
    assert first.floors == {"output_throughput_per_node": 871.78, "input_throughput_per_node": 1744.75}
    assert second.dataset == "sonnet" and second.concurrency == 4 and second.ceilings["tpot_ms.p99"] == 80
    assert math.isinf(third.request_rate) and third.mode == "open"
    assert profile.training[0]["converge"]["below"] == 0.0013
    assert profile.accuracy["datasets"][1]["tolerance"] == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nprofiles:\n  a:\n    nodse: 2\n", ":4: profiles.a.nodse: unknown key 'nodse' in profile; did you mean 'nodes'?"),
        ("version: 1\nprofiles:\n  a:\n    nodes: two\n", ":4: profiles.a.nodes: expected a whole number >= 1, got 'two'"),
        ("version: 1\nprofiles:\n  a:\n    nodes: 0\n", ":4: profiles.a.nodes: expected a whole number >= 1, got 0"),
        ("version: 2\nprofiles: {}\n", ":1: version: expected a whole number >= 1 and <= 1, got 2"),
        (
            "version: 1\nprofiles:\n  a:\n    serving:\n      scenarios:\n        - input_len: 8\n          output_len: 8\n"
            "          floors: {output_throughput_per_nod: 3}\n",
            ":8: profiles.a.serving.scenarios[0].floors.output_throughput_per_nod: unknown metric "
            "'output_throughput_per_nod'; did you mean 'output_throughput_per_node'?",
        ),
        (
            "version: 1\nprofiles:\n  a:\n    serving:\n      scenarios:\n        - input_len: 8\n          output_len: 8\n"
            "          concurrency: 4\n          request_rate: 2\n",
            ":6: profiles.a.serving.scenarios[0]: give either concurrency",
        ),
        ("version: 1\nprofiles:\n  a:\n    api: chatt\n", ":4: profiles.a.api: 'chatt' is not one of completions, chat (did you mean 'chat'?)"),
        (
            "version: 1\nprofiles:\n  a:\n    accuracy:\n      backend: opencompass\n      datasets:\n        - {name: x}\n",
            ":7: profiles.a.accuracy.datasets[0]: dataset 'x' needs min:, or reference: (with tolerance:), or reference_results:",
        ),
        ("version: 1\nprofiles:\n  a:\n    nodes: [1\n", ": not valid YAML"),
        ("version: 1\nprofiles:\n  a: {}\n  a: {}\n", ":4: not valid YAML: duplicate key 'a'"),
        ("", ": the file is empty"),
        (
            "version: 1\nprofiles:\n  a:\n    serving:\n      scenarios:\n        - input_len: 8\n          output_len: 8\n"
            "          stall_timeout_s: -3\n",
            ":8: profiles.a.serving.scenarios[0].stall_timeout_s: expected a number > 0, got -3",
        ),
        ("version: 1\nprofiles:\n  a:\n    first_byte_timeout_s: 0\n",
         ":4: profiles.a.first_byte_timeout_s: expected a number > 0, got 0"),
        ("version: 1\ndefaults:\n  connect_timeout_s: -1\nprofiles: {}\n",
         ":3: defaults.connect_timeout_s: expected a number > 0, got -1"),
        ("version: 1\nprofiles:\n  a:\n    serving:\n      defaults: {timeout_s: fast}\n",
         ":5: profiles.a.serving.defaults.timeout_s: expected a number > 0, got 'fast'"),
        ("version: 1\nprofiles:\n  a:\n    stall_timout_s: 3\n", "did you mean 'stall_timeout_s'?"),
    ],
)
def test_bad_files_name_file_line_and_key(text, expected):
    with pytest.raises(ThresholdsError) as info:
        parse_thresholds(text, Path("t.yaml"))
    assert str(info.value).startswith("t.yaml"), str(info.value)
    assert expected in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ThresholdsError, match="does not exist"):
        load_thresholds(tmp_path / "nope.yaml")


def test_profile_selection():
    thresholds = parse_thresholds(GOOD, Path("t.yaml"))
    assert [p.name for p in thresholds.select(["other"])] == ["other"]
    with pytest.raises(ThresholdsError, match="choose with --deepseek-profile: other, v3-h800"):
        thresholds.select([])
    with pytest.raises(ThresholdsError, match="did you mean 'v3-h800'"):
        thresholds.select(["v3-h80"])


def test_shipped_thresholds_file_is_valid():
    shipped = Path(__file__).resolve().parents[2] / "thresholds.yaml"
    thresholds = load_thresholds(shipped)
    assert "sim-deepseek-v3" in thresholds.profiles
    lmdeploy = thresholds.profiles["deepseek-v3-lmdeploy-h800x2-tp16"]
    assert lmdeploy.scenarios[0].floors["output_throughput_per_node"] == 871.78


@pytest.mark.parametrize(
    ("scenarios", "expected"),
    [
        ("      defaults: {dataset: jsonl}\n      scenarios:\n        - {input_len: 8, output_len: 8}\n",
         ":7: profiles.a.serving.scenarios[0]: dataset 'jsonl' needs dataset_path"),
        ("      scenarios:\n        - {input_len: 8, output_len: 8}\n        - {input_len: 8, output_len: 8}\n",
         ":7: profiles.a.serving.scenarios[1]: two scenarios would both be called 'in8-out8-c1'"),
        ("      scenarios:\n        - {output_len: 8}\n",
         ":6: profiles.a.serving.scenarios[0]: every scenario needs input_len and output_len"),
    ],
)
def test_merged_scenarios_are_validated(scenarios, expected):
    text = "version: 1\nprofiles:\n  a:\n    serving:\n" + scenarios
    with pytest.raises(ThresholdsError) as info:
        parse_thresholds(text, Path("t.yaml"))
    assert expected in str(info.value)


def test_a_scenario_naming_its_load_drops_the_defaults_batch_shape():
    text = ("version: 1\nprofiles:\n  a:\n    serving:\n      defaults: {batch_size: 8, num_iters: 2}\n"
            "      scenarios:\n        - {input_len: 8, output_len: 8, concurrency: 4}\n"
            "        - {input_len: 8, output_len: 8, api: chat}\n")
    first, second = parse_thresholds(text).profiles["a"].scenarios
    assert (first.mode, first.ident) == ("closed", "in8-out8-c4")
    assert (second.mode, second.ident) == ("batch", "chat-in8-out8-b8x2")


def test_training_entry_names_are_unique():
    text = "version: 1\nprofiles:\n  a:\n    training:\n      - {name: x}\n      - {name: x}\n"
    with pytest.raises(ThresholdsError, match=":6: profiles.a.training\\[1\\].name: two training entries"):
        parse_thresholds(text, Path("t.yaml"))
