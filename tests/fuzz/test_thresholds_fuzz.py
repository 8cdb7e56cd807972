"""Fuzzing the thresholds loader (`parse_thresholds`, with `yaml_lines` and `schema`).

Its contract: any text gives a `Thresholds` or a `ThresholdsError` whose message starts with the
file's name (then the line and the dotted key when it knows them) and says what is wrong. What it
accepts is usable: scenario ids, descriptions and client limits build, and each training entry reads
into its typed settings (`read_entry`) or names the key it cannot use.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import strategies as st

from pytest_deepseek.thresholds import Thresholds, ThresholdsError, parse_thresholds
from pytest_deepseek.training.spec import read_entry

from .mutate import NASTY_NUMBERS, assert_clear, mutated_lines, mutated_tree, pick
from .target import Target

FILE = Path("t.yaml")
SHIPPED = Path(__file__).resolve().parents[2] / "thresholds.yaml"
# Every section and most keys the schema knows, in one small file.
RICH = """\
version: 1
defaults: {confidence: 0.9, error_budget: 0.02, allow_inconclusive: false, timeout_s: 30}
profiles:
  a:
    model: m
    engine: vllm
    hardware: H800
    nodes: 2
    devices_per_node: 8
    api: chat
    endpoint: http://127.0.0.1:8000/v1
    tokenizer: /data/tok
    confidence: 0.95
    error_budget: 0.01
    serving:
      defaults: {dataset: random, warmup: 2, client_health: {max_loop_lag_p99_ms: 50, min_rate_ratio: 0.8}}
      scenarios:
        - {name: s, input_len: 8, output_len: 8, request_rate: inf, max_concurrency: 4, arrival: gamma, burstiness: 0.5}
        - {input_len: 8, output_len: 16, batch_size: 4, num_iters: 2, min_batch_s: 0.5}
        - input_len: 8
          output_len: 8
          dataset: jsonl
          dataset_path: prompts.jsonl
          concurrency: 2
          duration_s: 10
          slo: {ttft_ms: 100, tpot_ms: 20}
          floors: {good_fraction: 0.9, output_throughput_per_node: 10}
          ceilings: {ttft_ms.p99: 100, error_rate: 0.0}
    training:
      - name: t
        log: [a.log, b.log]
        dialect: megatron
        rank: 0
        converge: {metric: loss, below: 1.5, within: 100, statistic: ema, window: 5, sustain: 2, strict: true}
        diverge: {ratio: 1.5, after: 10}
        plateau: {patience: 3, epsilon: 0.01, window: 20}
        fail_fast: {nan: true, skipped_iterations: null, overflow_streak: 5, metrics: loss}
        floors: {tokens_per_sec.median: 100}
        ceilings: {step_time_s: 2.5}
        speed_statistic: mean
        warmup_iters: 5
        seq_length: 4096
        global_batch_size: 64
        devices: 8
    accuracy:
      backend: lm-eval
      model: m
      generation: {temperature: 0, max_tokens: 64, repeats: 2, seed: 1}
      datasets:
        - {name: mmlu, min: 40.0, expected_items: 8, confidence: 0.9}
        - {name: cluewsc-dev, reference: 70.0, tolerance: 5.0}
        - {name: math_500, reference_results: ref/, spread: 2.0}
"""
SEEDS = (SHIPPED.read_text(encoding="utf-8"), RICH)
SCHEMA_KEYS = frozenset((
    "version", "profiles", "defaults", "nodes", "devices_per_node", "api", "serving", "scenarios", "input_len",
    "output_len", "concurrency", "request_rate", "batch_size", "dataset", "dataset_path", "floors", "ceilings",
    "slo", "client_health", "training", "converge", "below", "within", "window", "plateau", "diverge", "accuracy",
    "datasets", "min", "reference", "tolerance", "name", "confidence", "error_budget", "fail_fast", "log",
))
# YAML that no Python value dumps to: spliced in verbatim for a marker.
RAW_YAML = (
    ".nan", ".inf", "-.inf", "9" * 400, "9" * 5000, "2020-13-45", "*nowhere", "&x [*x]", "!!binary abc", "!!int x",
    "!!python/object:os.system x", "[" * 400 + "]" * 400, "{a: 1, a: 2}", "0o99", "0x", "1_000", "!!set {a, b}",
    "!!timestamp 2020-02-30", "? [a]\n: 1", "|\n  text", ">-", "'unterminated", "'\\x00'", "\"\\ud800\"",
)
YAML_TOKENS = (
    "version: 1\n", "profiles:\n", "  a:\n", "    nodes: ", "    serving:\n", "      scenarios:\n", "- ", "{", "}",
    "[", "]", ", ", ": ", "&a ", "*a", "!!set ", "!!binary ", "? ", "---\n", "...\n", "%YAML 1.1\n", "\t", "'",
    '"', "~", "<<: *a\n", "\n", "  ", "#", "|\n", ">\n", "2020-13-45", "1e999", ".nan",
)


def check_thresholds(text: str) -> None:
    """A `Thresholds` whose contents are usable, or a `ThresholdsError` naming the file."""
    try:
        thresholds = parse_thresholds(text, FILE)
    except ThresholdsError as exc:
        message = str(exc)
        assert message.startswith(str(FILE)), message[:300]
        assert_clear(message)
        return
    assert_usable(thresholds)


def assert_usable(thresholds: Thresholds) -> None:
    for name, profile in thresholds.profiles.items():
        assert isinstance(name, str) and profile.name == name
        assert type(profile.nodes) is int and type(profile.devices_per_node) is int
        for scenario in profile.scenarios:
            assert isinstance(scenario.ident, str)
            scenario.describe()
            scenario.client_limits
        for entry in profile.training:
            try:
                read_entry(entry)
            except ValueError as exc:
                assert_clear(str(exc))


# -- fully random input ---------------------------------------------------------------------------------


def _random_texts() -> st.SearchStrategy[str]:
    soup = st.lists(st.sampled_from(YAML_TOKENS) | pick(NASTY_NUMBERS) | st.text(max_size=5), max_size=30)
    return st.text(max_size=300) | soup.map("".join)


# -- structure-aware input: valid files with keys and values broken --------------------------------------


@st.composite
def _mutated_data(draw: st.DrawFn) -> str:
    """A seed's data with keys dropped or retyped and values replaced, dumped back to YAML."""
    seed = yaml.safe_load(draw(st.sampled_from(SEEDS)))
    data, raw = draw(mutated_tree(seed, SCHEMA_KEYS, max_edits=4, raw_texts=RAW_YAML))
    text = yaml.safe_dump(data, default_flow_style=draw(st.sampled_from((False, None))), sort_keys=False,
                          allow_unicode=draw(st.booleans()))
    for marker, replacement in raw.items():
        text = text.replace(marker, replacement)
    return text


@st.composite
def _renamed_keys(draw: st.DrawFn) -> str:
    """A seed with keys renamed: a typo, another section's key, a number, a duplicate."""
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        keyed = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
        i = draw(st.sampled_from(keyed))
        indent = len(lines[i]) - len(lines[i].lstrip(" -"))
        key, _, value = lines[i][indent:].partition(":")
        new_key = draw(st.sampled_from(sorted(SCHEMA_KEYS)) | st.just(key[:-1]) | st.just(key + key[-1:])
                       | pick(NASTY_NUMBERS) | st.text(max_size=6))
        lines[i] = lines[i][:indent] + new_key + ":" + value
        if draw(st.booleans()):
            lines.insert(i, lines[i])
    return "\n".join(lines) + "\n"


@st.composite
def _mutated_text(draw: st.DrawFn) -> str:
    """A seed's text with lines edited, cut, re-indented, duplicated or swapped."""
    return "\n".join(draw(mutated_lines(draw(st.sampled_from(SEEDS)).splitlines(), max_edits=3))) + "\n"


TARGETS = [
    Target("thresholds.random-text", _random_texts(), check_thresholds),
    Target("thresholds.mutated-values", _mutated_data(), check_thresholds),
    Target("thresholds.renamed-keys", _renamed_keys(), check_thresholds),
    Target("thresholds.mutated-lines", _mutated_text(), check_thresholds),
]


def test_seeds_are_valid() -> None:
    """The seeds load as they are: mutations start from valid files."""
    for seed in SEEDS:
        assert_usable(parse_thresholds(seed, FILE))


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_never_crashes(target: Target) -> None:
    target.run()
