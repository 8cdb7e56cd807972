"""Every dialect on the real logs the frameworks wrote (tests/data/training/real)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from pytest_deepseek.training import load_records

from .synth import REAL, TOY, TOY_LOG

MM = REAL / "mmengine"


def test_mmengine_iter_text_and_json_agree_to_printed_precision() -> None:
    text = load_records(MM / "iter-based" / "20261123_093435" / "20261123_093435.log")
    js = load_records(MM / "iter-based" / "20261123_093435" / "vis_data" / "20261123_093435.json")
    assert text.dialect == js.dialect == "mmengine"
    assert [r.iteration for r in text.records] == list(range(1, 51)) == [r.iteration for r in js.records]
    for a, b in zip(text.records, js.records):
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], abs=5e-5)
    r9 = text.records[8]
    assert r9.metrics["time"] == 2.0053 and r9.metrics["step_time_s"] == 2.0053  # the epoch-boundary stall
    assert r9.metrics["tokens_per_sec"] == 510.6397
    assert r9.time is not None and r9.quote().endswith("tokens_per_sec: 510.6397")
    assert text.units["memory"] == "MiB" and text.units["tokens_per_sec"].startswith("tokens/s per device")


def test_mmengine_directory_prefers_vis_data_json() -> None:
    log = load_records(MM / "iter-based")
    assert log.files[0].endswith("vis_data/20261123_093435.json")
    assert log.files[1].endswith("20261123_093435.log")  # read for crash messages only
    assert log.records[0].metrics["loss"] == 3.168362855911255
    assert len(log.records) == 50 and log.corrupt_lines == 0


def test_mmengine_validation_records_are_not_training_records() -> None:
    log = load_records(MM / "iter-based")
    assert all("mse" not in r.metrics for r in log.records)


def test_mmengine_epoch_based_text_and_json() -> None:
    text = load_records(MM / "epoch-based" / "20261123_093506" / "20261123_093506.log")
    js = load_records(MM / "epoch-based")
    assert [r.iteration for r in text.records] == list(range(2, 25, 2)) == [r.iteration for r in js.records]
    assert [r.epoch for r in text.records][:5] == [1, 1, 1, 1, 2]
    assert text.records[-1].metrics["loss"] == 0.0518


def test_mmengine_eta_in_days_does_not_break_the_record() -> None:
    log = load_records(MM / "eta-days" / "20261123_093538" / "20261123_093538.log")
    assert [r.iteration for r in log.records] == [1, 2, 3, 4]
    assert log.records[0].metrics["loss"] == 4.3541
    assert "eta" not in log.records[0].metrics and log.records[0].metrics["lr"] == 5e-03


def test_mmengine_console_variant_without_year() -> None:
    log = load_records(MM / "iter-based-console.txt")
    assert len(log.records) == 50 and log.records[-1].metrics["loss"] == 0.0196
    assert log.records[8].time - log.records[7].time == 2  # 09:34:36 -> 09:34:38


def test_mindformers_console_records_join_two_lines() -> None:
    log = load_records(REAL / "mindformers" / "console.txt")
    assert log.dialect == "mindformers" and len(log.records) == 16
    r1 = log.records[0]
    assert r1.metrics["loss"] == 0.822899 and r1.metrics["per_step_time_ms"] == 356
    assert r1.metrics["step_time_s"] == 0.356 and r1.metrics["samples_per_sec_per_device"] == 22.42706
    assert r1.metrics["overflow"] == 0.0 and r1.metrics["grad_norm"] == 2.4673533
    assert log.records[8].iteration == 9 and log.records[8].epoch == 2  # epoch 2, step 1
    assert "samples/s/p" in r1.line


def test_mindformers_info_log_with_nan_loss() -> None:
    log = load_records(REAL / "mindformers")  # resolves output/log/rank_0/info.log
    assert log.files[0].endswith("rank_0/info.log") and log.rank == 0
    assert math.isnan(log.records[5].metrics["loss"]) and not math.isnan(log.records[4].metrics["loss"])


def test_hf_console_5x_strings_and_trainer_state_agree() -> None:
    console = load_records(REAL / "hf-trainer" / "console.txt")
    state = load_records(REAL / "hf-trainer" / "trainer_state.json")
    assert console.dialect == state.dialect == "hf"
    assert len(console.records) == len(state.records) == 50
    for a, b in zip(console.records, state.records):
        assert a.iteration == b.iteration
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], rel=2e-3)
    # cumulative global tokens/s turned into per-step figures from differences
    r = state.records[10]
    assert r.metrics["step_time_s"] > 0 and r.metrics["tokens_per_sec_global"] > 0
    assert "eval_loss" not in {k for rec in state.records for k in rec.metrics}


def test_deepspeed_timer_lines() -> None:
    log = load_records(REAL / "deepspeed" / "ds_stdout.txt")
    assert log.dialect == "deepspeed" and log.rank == 0
    assert [r.iteration for r in log.records] == list(range(1, 9))
    assert log.records[0].metrics["fwd_ms"] == 5.80
    assert log.records[0].metrics["step_time_s"] == pytest.approx((5.80 + 4.91 + 2.54) / 1000)


def test_toy_run_text_and_json_have_the_same_run() -> None:
    text = load_records(TOY_LOG)
    js = load_records(TOY)
    assert len(text.records) == len(js.records) == 2000
    assert all(abs(a.metrics["loss"] - b.metrics["loss"]) <= 5e-5 for a, b in zip(text.records, js.records))


def test_mmengine_bulk_path_equals_the_line_by_line_path(tmp_path: Path) -> None:
    fast = load_records(TOY_LOG)  # clean text: the bulk path
    prefixed = tmp_path / "prefixed.log"
    prefixed.write_text("".join(f"[rank0]:{line}\n" for line in TOY_LOG.read_text().splitlines()))
    slow = load_records(prefixed)  # launcher prefixes: line by line
    assert len(fast.records) == len(slow.records) == 2000
    for a, b in zip(fast.records, slow.records):
        assert (a.iteration, a.metrics, a.lineno, a.time) == (b.iteration, b.metrics, b.lineno, b.time)
    assert slow.rank == 0 and fast.rank is None


def test_mmengine_layout_change_mid_file_is_followed(tmp_path: Path) -> None:
    lines = TOY_LOG.read_text().splitlines()
    recs = [i for i, line in enumerate(lines) if "Iter(train)" in line]
    k = recs[100]
    lines[k] = lines[k].replace("  tflops:", "  memory: 54047  tflops:")  # CUDA adds memory
    lines[k + 1] = re.sub(r"loss: \S+", "loss: 1,234.5", lines[k + 1])  # an odd number in the bulk path
    p = tmp_path / "x.log"
    p.write_text("\n".join(lines) + "\n")
    log = load_records(p)
    assert log.records[100].metrics["memory"] == 54047 and "memory" not in log.records[99].metrics
    assert log.records[101].metrics["loss"] == 1234.5 and len(log.records) == 2000
    assert log.corrupt_lines == 0
