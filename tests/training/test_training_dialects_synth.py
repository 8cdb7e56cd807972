"""Dialects without a real capture here, from our own generators; detection and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_deepseek.training import TrainingLogError, load_records

from . import synth


def test_megatron_line_and_dropped_nan_loss(tmp_path: Path) -> None:
    p = synth.write(tmp_path / "stdout.log", ["some start-up line"] + synth.megatron_lines(synth.losses(6), nan_at=[5]))
    log = load_records(p)
    assert log.dialect == "megatron"
    r = log.records[0]
    assert r.metrics["loss"] == pytest.approx(2.0) and r.metrics["step_time_s"] == pytest.approx(1.7523)
    assert r.metrics["tflops"] == 180.2 and r.metrics["global_batch_size"] == 64
    assert "loss" not in log.records[4].metrics and log.records[4].metrics["nan_iterations"] == 1


def test_torchtitan_coloured_with_thousands(tmp_path: Path) -> None:
    log = load_records(synth.write(tmp_path / "titan.log", synth.torchtitan_lines([2.3456, 2.1])))
    assert log.dialect == "torchtitan" and log.rank == 0
    m = log.records[1].metrics
    assert m["loss"] == 2.1 and m["tps"] == 1236 and m["tokens_per_sec"] == 1236
    assert m["memory_gib"] == 12.34 and m["memory_pct"] == 15.6 and m["mfu_pct"] == 12.3


def test_deepspeed_step_and_throughput_lines_merge(tmp_path: Path) -> None:
    log = load_records(synth.write(tmp_path / "ds.log", synth.deepspeed_lines(6)))
    assert [r.iteration for r in log.records] == [2, 4, 6]
    m = log.records[0].metrics
    assert m["skipped_iterations"] == 0 and m["lr"] == 0.05 and m["samples_per_sec"] == 1001.25
    assert m["max_mem_allocated_gb"] == 1.25


def test_hf_4x_floats_with_nan(tmp_path: Path) -> None:
    lines = synth.hf4_lines([4.0, 3.5]) + ["{'loss': nan, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 0.03}",
                                           "{'eval_loss': 1.0, 'epoch': 0.03}"]
    log = load_records(synth.write(tmp_path / "out.txt", lines))
    assert log.dialect == "hf" and [r.iteration for r in log.records] == [1, 2, 3]
    assert log.records[0].metrics["loss"] == 4.0 and math.isnan(log.records[2].metrics["loss"])


def test_llamafactory_trainer_log_jsonl(tmp_path: Path) -> None:
    d = tmp_path / "saves"
    synth.write(d / "trainer_log.jsonl", synth.llamafactory_lines([1.5, 1.2, 1.0]))
    log = load_records(d)
    assert log.dialect == "hf" and [r.iteration for r in log.records] == [1, 2, 3]
    assert log.records[2].metrics["tokens_per_sec_global"] == pytest.approx(2048.0)
    assert log.records[2].metrics["step_time_s"] == pytest.approx(2.0)


def test_plain_jsonl(tmp_path: Path) -> None:
    p = synth.write(tmp_path / "m.jsonl", [json.dumps({"step": i, "loss": 1 / i, "note": "x"}) for i in (1, 2, 3)])
    log = load_records(p)
    assert log.dialect == "jsonl" and log.records[2].metrics == {"loss": pytest.approx(1 / 3)}


def test_mindformers_old_three_decimal_format_and_startup_info(tmp_path: Path) -> None:
    lines = ["[INFO] 2026-11-23 10:00:00,000 config: {'seq_length': 4096, 'global_batch_size': 80, 'device_num': 64}"]
    lines += synth.mindformers_lines([142000.0] * 3, [2.1234, 2.0, 1.9], gbs=80, devices=64, old=True)
    log = load_records(synth.write(tmp_path / "worker_0.log", lines))
    assert log.records[0].metrics["loss"] == 2.123 and "loss_avg" not in log.records[0].metrics
    assert log.info == {"seq_length": 4096.0, "global_batch_size": 80.0, "device_num": 64.0}


def test_dialect_override_and_unknown_name(tmp_path: Path) -> None:
    p = synth.write(tmp_path / "m.jsonl", [json.dumps({"step": 1, "loss": 1.0})])
    assert load_records(p, dialect="jsonl").dialect == "jsonl"
    with pytest.raises(TrainingLogError, match="unknown dialect 'fairseq'"):
        load_records(p, dialect="fairseq")


def test_undetectable_format_names_dialects_and_first_lines(tmp_path: Path) -> None:
    p = synth.write(tmp_path / "weird.log", ["epoch 1 batch 3 cost=0.4", "epoch 1 batch 4 cost=0.3"])
    with pytest.raises(TrainingLogError) as exc:
        load_records(p)
    msg = str(exc.value)
    assert "mmengine, mindformers, megatron, torchtitan, deepspeed, hf, jsonl" in msg
    assert "epoch 1 batch 3 cost=0.4" in msg and str(p) in msg


def test_empty_log_is_an_error_naming_the_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_text("")
    with pytest.raises(TrainingLogError, match="empty.log"):
        load_records(p)
    q = synth.write(tmp_path / "noloss.log", ["2026/11/23 09:34:35 - mmengine - INFO - start"])
    with pytest.raises(TrainingLogError, match=r"no mmengine training records in .*noloss.log"):
        load_records(q)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingLogError, match="not found"):
        load_records(tmp_path / "nope.log")
    with pytest.raises(TrainingLogError, match="no training log matches"):
        load_records(str(tmp_path / "*.nothing"))


def test_corrupt_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    lines = synth.toy_text_records()[:5]
    lines.insert(2, lines[2].replace("loss: ", "loss: 0.0x1"))
    lines.insert(3, "2026/11/23 12:20:00 - mmengine - INFO - Iter(train) [garbled")
    lines.insert(4, '{"iter": 3, "loss": 1.0')  # truncated JSON
    log = load_records(synth.write(tmp_path / "c.log", lines))
    assert log.corrupt_lines == 3 and len(log.records) == 5
    assert "unreadable" in log.corrupt_examples[0]


def test_partial_last_line_is_ignored_with_a_warning(tmp_path: Path) -> None:
    lines = synth.toy_text_records()[:3]
    p = tmp_path / "live.log"
    p.write_text("\n".join(lines) + "\n" + lines[0][:60])
    log = load_records(p)
    assert len(log.records) == 3 and "no newline" in log.warnings[0]
