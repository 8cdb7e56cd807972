"""Log lines that fuzzing (tests/fuzz/test_training_logs_fuzz.py) found the dialect parsers crashing
or stalling on. A line a parser cannot use is a corrupt line (counted, quoted with its place); the
records around it are kept."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from pytest_deepseek.training import TrainingLog, TrainingLogError, load_records

from . import synth

HUGE_INT = "1" + "0" * 400  # JSON can carry it, a float cannot
DIGITS = "9" * 5000  # Python refuses int() of more than 4300 digits


def load(tmp_path: Path, name: str, lines: list[str], dialect: str = "auto") -> TrainingLog:
    return load_records(synth.write(tmp_path / name, lines), dialect)


def corrupt_reasons(log: TrainingLog) -> list[str]:
    return [example.split(": ")[1] for example in log.corrupt_examples]


@pytest.mark.parametrize("bad_iter", ["NaN", "Infinity", "-Infinity", "[5]", '"5"', "5.5", "true", HUGE_INT])
def test_mmengine_json_iter_that_is_no_iteration_is_a_corrupt_line(tmp_path: Path, bad_iter: str) -> None:
    lines = ['{"lr": 0.1, "loss": 2.0, "iter": 1, "step": 1}',
             '{"lr": 0.1, "loss": 1.5, "iter": %s, "step": 2}' % bad_iter,
             '{"lr": 0.1, "loss": 1.0, "iter": 3, "epoch": NaN, "step": 3}']
    log = load(tmp_path, "vis.json", lines, "mmengine")
    assert [r.iteration for r in log.records] == [1, 3] and log.records[1].epoch is None
    assert log.corrupt_lines == 1 and corrupt_reasons(log) == ["iter is not a whole number below 10^18"]


@pytest.mark.parametrize("dialect", ["mmengine", "jsonl"])
def test_json_integer_beyond_a_float_is_an_infinite_metric(tmp_path: Path, dialect: str) -> None:
    log = load(tmp_path, "m.json", ['{"iter": 1, "step": 1, "loss": %s, "grad_norm": -%s}' % (HUGE_INT, HUGE_INT)],
               dialect)
    assert log.records[0].metrics["loss"] == math.inf and log.records[0].metrics["grad_norm"] == -math.inf


@pytest.mark.parametrize("bad_step", ["NaN", "Infinity", "2.5", "1e300"])
def test_jsonl_step_that_is_no_step_is_a_corrupt_line(tmp_path: Path, bad_step: str) -> None:
    lines = ['{"step": 1, "loss": 2.0, "rank": true}', '{"step": %s, "loss": 1.5}' % bad_step,
             '{"step": 3, "loss": 1.0}']
    log = load(tmp_path, "m.jsonl", lines, "jsonl")
    assert [r.iteration for r in log.records] == [1, 3] and log.records[0].rank is None
    assert corrupt_reasons(log) == ["step is not a whole number below 10^18"]


def test_jsonl_boolean_step_key_gives_way_to_the_next_step_key(tmp_path: Path) -> None:
    log = load(tmp_path, "m.jsonl", ['{"step": true, "iteration": 7, "loss": 1.0}'], "jsonl")
    assert [r.iteration for r in log.records] == [7] and corrupt_reasons(log) == []


@pytest.mark.parametrize("bad_step", ["NaN", "Infinity", "-Infinity"])
def test_hf_step_that_is_no_step_is_a_corrupt_entry(tmp_path: Path, bad_step: str) -> None:
    lines = synth.llamafactory_lines(synth.losses(3))
    lines[1] = lines[1].replace('"current_steps": 2', f'"current_steps": {bad_step}')
    log = load(tmp_path, "trainer_log.jsonl", lines)
    assert log.dialect == "hf" and [r.iteration for r in log.records] == [1, 3]
    assert corrupt_reasons(log) == ["step is not a whole number below 10^18"]
    state = {"log_history": [{"step": 1, "loss": 2.0}, {"step": math.nan, "loss": 1.0}], "train_batch_size": 10**400}
    state_log = load_records(synth.write(tmp_path / "trainer_state.json", [json.dumps(state)]))
    assert [r.iteration for r in state_log.records] == [1] and state_log.info["train_batch_size"] == math.inf


@pytest.mark.parametrize(("name", "dialect", "line"), [
    ("vis.json", "mmengine", '{"iter": 2, "loss": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("m.jsonl", "jsonl", '{"step": 2, "loss": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("trainer_log.jsonl", "hf", '{"current_steps": ' + "[" * 5000 + "]" * 5000 + ', "loss": 1.0}'),
])
def test_json_nested_too_deeply_is_a_corrupt_line(tmp_path: Path, name: str, dialect: str, line: str) -> None:
    first = {"mmengine": '{"iter": 1, "loss": 2.0}', "jsonl": '{"step": 1, "loss": 2.0}',
             "hf": '{"current_steps": 1, "loss": 2.0}'}[dialect]
    log = load(tmp_path, name, [first, line], dialect)
    assert [r.iteration for r in log.records] == [1]
    assert corrupt_reasons(log) == ["unreadable JSON"]


def test_hf_trainer_state_nested_too_deeply_is_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text('{"log_history": ' + "[" * 5000 + "]" * 5000 + "}\n")
    with pytest.raises(TrainingLogError, match="no hf training records in .*trainer_state.json .*1 corrupt"):
        load_records(path)


def test_deepspeed_throughput_value_that_is_no_number_is_a_corrupt_line(tmp_path: Path) -> None:
    lines = synth.deepspeed_lines(4)
    lines[3] = lines[3].replace("RunningAvgSamplesPerSec=1000.5", "RunningAvgSamplesPerSec=-")
    log = load(tmp_path, "ds.log", lines)
    assert [r.iteration for r in log.records] == [2, 4] and "samples_per_sec" not in log.records[1].metrics
    assert corrupt_reasons(log) == ["unreadable throughput value"]


@pytest.mark.parametrize(("name", "lines"), [
    ("ds.log", [f"[Rank {DIGITS}] time (ms) | fwd: 1.0 | bwd: 2.0 | step: 3.0"] + synth.deepspeed_lines(2)),
    ("ds2.log", synth.deepspeed_lines(4) + [f"[2026-11-23] [Rank 0] step={DIGITS}, skipped=0, lr=[0.05], mom=[0.0]"]),
    ("mg.log", synth.megatron_lines(synth.losses(2)) + [f" iteration {DIGITS}/ 100 | lm loss: 1.0 |"]),
    ("tt.log", synth.torchtitan_lines(synth.losses(2)) + [f"step: {DIGITS}  loss:  2.3456"]),
    ("mf.log", synth.mindformers_lines([350.0] * 2, [2.0, 1.0], 64, 8)
     + [f"{{ Epoch:[  1/  1], step:[{DIGITS}/ 1000], loss: 1.0, per_step_time: 1ms"]),
    ("mm.log", synth.toy_text_records()[:2] + [f"Iter(train) [{DIGITS}/2000]  lr: 1.0  loss: 1.0"]),
    ("prefixed.log", [f"[rank{DIGITS}]: " + line for line in synth.torchtitan_lines(synth.losses(2))]),
])
def test_a_5000_digit_number_is_no_step_or_rank(tmp_path: Path, name: str, lines: list[str]) -> None:
    log = load(tmp_path, name, lines)
    assert len(log.records) == 2
    assert all(r.iteration < 10**18 and (r.rank is None or r.rank < 10**9) for r in log.records)


def test_mmengine_lines_without_key_value_pairs(tmp_path: Path) -> None:
    log = load(tmp_path, "a.log", ["Iter(train) [1/10] ", "Iter(train) [2/10] ", "Iter(train) [3/10] "], "mmengine")
    assert [(r.iteration, r.metrics) for r in log.records] == [(1, {}), (2, {}), (3, {})]
    log = load(tmp_path, "b.log", ["Iter(train) [1/10]  eta: 0:00:01", "Iter(train) [", "Iter(train) [2/10]  eta: 1"],
               "mmengine")
    assert [r.iteration for r in log.records] == [1, 2]


@pytest.mark.parametrize(("name", "lines"), [
    # a search restarting inside a long run of digits or word characters went quadratic: minutes for 200 kB
    ("mf.log", synth.mindformers_lines([350.0], [2.0], 64, 8)[:1] + ["9" * 200_000 + "x samples/s/p"]),
    ("mm.log", synth.toy_text_records()[:1] + ["Iter(train) [2/10]  " + "a" * 200_000]),
    ("tt.log", synth.torchtitan_lines([2.0]) + ["step: 2  loss: 1.0 " + "a" * 200_000]),
    ("ds.log", synth.deepspeed_lines(2)[:1] + ["epoch=0/micro_step=2/global_step=2, RunningAvgSamplesPerSec=1.0 "
                                               + "a" * 200_000]),
])
def test_long_runs_parse_in_linear_time(tmp_path: Path, name: str, lines: list[str]) -> None:
    start = time.perf_counter()
    load(tmp_path, name, lines)
    assert time.perf_counter() - start < 5  # about 10 ms; quadratic searches took minutes
