"""Criteria over parsed logs: converge, fail fast, diverge, plateau, speed, memory, cross-checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_deepseek.training import TrainingLog, evaluate_entry, load_records
from pytest_deepseek.training.result import is_final
from pytest_deepseek.stats.summary import quantile
from pytest_deepseek.training.stats import statistic_series, summarise

from . import synth

SEED_XTUNER = {"name": "xtuner-deepseek-v2-lite-alpaca", "dialect": "auto",
               "converge": {"metric": "loss", "below": 0.0013, "within": 2000, "statistic": "window_mean",
                            "window": 10, "sustain": 1}}


def check(result, name: str):
    return next(c for c in result.checks if c.name == name)


# --- converge on the real toy run -------------------------------------------------------------

def test_seed_xtuner_target_passes_on_the_real_run(toy_log: TrainingLog) -> None:
    res = evaluate_entry(SEED_XTUNER, toy_log)
    c = check(res, "converge")
    assert res.verdict == "pass" and c.verdict == "pass" and is_final(c)
    assert c.details["statistic"] == "window_mean(10)" and c.op == "<" and c.threshold == 0.0013
    assert c.details["details"]["first_crossing_iteration"] == 1067 and c.value < 0.0013
    assert '"iter": 1067' in c.details["record"] and "logging interval 1" in c.message
    assert res.metrics["converge.first_crossing_iteration"] == 1067
    assert res.metrics["dialect"] == "mmengine" and res.metrics["n_records"] == 2000


def test_crossing_after_within_fails_and_reports_the_value_at_within(toy_log: TrainingLog) -> None:
    entry = {**SEED_XTUNER, "converge": {**SEED_XTUNER["converge"], "within": 1066}}
    c = check(evaluate_entry(entry, toy_log), "converge")
    assert c.verdict == "fail" and is_final(c) and c.details["iterations"] == [1, 1066]
    assert c.value == pytest.approx(toy_log_window_mean(toy_log, 1066))
    assert "by iteration 1066" in c.message and '"iter": 1066' in c.details["record"]
    entry["converge"]["within"] = 1067
    assert check(evaluate_entry(entry, toy_log), "converge").verdict == "pass"


def toy_log_window_mean(log: TrainingLog, it: int) -> float:
    vals = [r.metrics["loss"] for r in log.records if it - 10 < r.iteration <= it]
    return sum(vals) / len(vals)


def test_raw_dips_below_while_the_window_mean_does_not(toy_log: TrainingLog) -> None:
    conv = {"metric": "loss", "below": 0.0013, "within": 1000}
    raw = check(evaluate_entry({"converge": {**conv, "statistic": "raw"}}, toy_log), "converge")
    wm = check(evaluate_entry({"converge": {**conv, "statistic": "window_mean", "window": 10}}, toy_log), "converge")
    assert raw.verdict == "pass" and raw.details["details"]["first_crossing_iteration"] == 956
    assert wm.verdict == "fail" and wm.value > 0.0013


def test_sustain_and_ema_move_the_crossing(toy_log: TrainingLog) -> None:
    conv = {"below": 0.0013, "within": 2000, "statistic": "raw"}
    one = check(evaluate_entry({"converge": conv}, toy_log), "converge")
    five = check(evaluate_entry({"converge": {**conv, "sustain": 5}}, toy_log), "converge")
    ema = check(evaluate_entry({"converge": {**conv, "statistic": "ema", "window": 10}}, toy_log), "converge")
    assert one.details["details"]["first_crossing_iteration"] < five.details["details"]["first_crossing_iteration"]
    assert "sustained 5 records" in five.message and ema.details["statistic"] == "ema(10)" and ema.verdict == "pass"


def test_strict_precision_on_the_four_decimal_text_log() -> None:
    text = load_records(synth.TOY_LOG)
    conv = {"below": 0.00125, "within": 2000, "statistic": "raw"}
    loose = check(evaluate_entry({"converge": conv}, text), "converge")
    strict = check(evaluate_entry({"converge": {**conv, "strict": True}}, text), "converge")
    assert "printed precision ±5e-05" in loose.message  # a printed 0.0013 is in [0.00125, 0.00135)
    assert strict.details["details"]["first_crossing_iteration"] > loose.details["details"]["first_crossing_iteration"]
    assert strict.value < 0.00125 and "strict" in strict.message


def test_unfinished_log_is_inconclusive(toy_log: TrainingLog) -> None:
    part = TrainingLog(toy_log.records[:500], "mmengine", None, ["x.json"])
    res = evaluate_entry(SEED_XTUNER, part, ended=False)
    c = check(res, "converge")
    assert c.verdict == "inconclusive" and not is_final(c) and not res.decided
    assert "ends at iteration 500" in c.message
    finished = check(evaluate_entry(SEED_XTUNER, part, ended=True), "converge")
    assert finished.verdict == "fail" and is_final(finished)
    assert "finished log ends at iteration 500" in finished.message


def test_missing_metric_is_an_error_naming_file_and_metric(toy_log: TrainingLog) -> None:
    res = evaluate_entry({"converge": {"metric": "lm_loss", "below": 1.0}}, toy_log)
    c = check(res, "converge")
    assert res.verdict == "error" and "'lm_loss' not found" in c.message and "20261123_124356.json" in c.message


def test_unusable_entry_is_an_error(toy_log: TrainingLog) -> None:
    res = evaluate_entry({"name": "x", "converge": {"below": "low"}}, toy_log)
    assert res.verdict == "error" and "converge.below must be a number" in res.checks[0].message


# --- fail fast ---------------------------------------------------------------------------------

def test_nan_loss_in_real_mindformers_log_fails_fast() -> None:
    log = load_records(synth.REAL / "mindformers")
    c = check(evaluate_entry({"converge": {"below": 0.1}}, log), "fail_fast")
    assert c.verdict == "fail" and is_final(c) and c.details["statistic"] == "non-finite"
    assert c.details["iterations"] == [6, 6] and "loss:[  nan/  nan]" in c.details["record"]


def test_megatron_dropped_loss_and_nan_counter(tmp_path: Path) -> None:
    log = load_records(synth.write(tmp_path / "m.log", synth.megatron_lines(synth.losses(8), nan_at=[6])))
    c = check(evaluate_entry({"converge": {"below": 0.1}}, log), "fail_fast")
    assert c.verdict == "fail" and c.metric == "nan_iterations" and c.details["iterations"] == [6, 6]
    no_counter = evaluate_entry({"fail_fast": {"nan_iterations": 5}}, log)
    c2 = check(no_counter, "fail_fast")
    assert c2.details["statistic"] == "missing metric" and "missing at iteration 6" in c2.message


def test_overflow_streak_and_skipped_counter(tmp_path: Path) -> None:
    lines = synth.mindformers_lines([100.0] * 8, [1.0] * 8, gbs=8, devices=1, overflow_at=range(3, 7))
    log = load_records(synth.write(tmp_path / "w.log", lines))
    assert check(evaluate_entry({"fail_fast": {"overflow_streak": 4}}, log), "fail_fast").verdict == "fail"
    assert check(evaluate_entry({"fail_fast": {"overflow_streak": 5}}, log), "fail_fast").verdict == "pass"
    ds = load_records(synth.write(tmp_path / "ds.log", [line.replace("skipped=0", "skipped=2") for line in synth.deepspeed_lines(4)]))
    assert check(evaluate_entry({}, ds), "fail_fast").metric == "skipped_iterations"
    assert check(evaluate_entry({"fail_fast": {"skipped_iterations": 2}}, ds), "fail_fast").verdict == "pass"


def test_crash_message_fails_fast(tmp_path: Path) -> None:
    lines = synth.toy_text_records()[:5] + ["Traceback (most recent call last):",
                                            "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1"]
    c = check(evaluate_entry({}, load_records(synth.write(tmp_path / "c.log", lines))), "fail_fast")
    assert c.verdict == "fail" and c.details["statistic"] == "crash" and "c.log:6" in c.details["record"]


# --- diverge and plateau -------------------------------------------------------------------------

def test_diverge_after_warmup(tmp_path: Path) -> None:
    curve = synth.losses(40, rate=0.2) + [0.5 * 1.1 ** k for k in range(1, 30)]
    log = load_records(synth.write(tmp_path / "m.log", synth.megatron_lines(curve, total=100)))
    c = check(evaluate_entry({"diverge": {"ratio": 1.5, "window": 5}}, log), "diverge")
    assert c.verdict == "fail" and c.details["iterations"][1] > 40 and "x best" in c.message
    assert check(evaluate_entry({"diverge": {"ratio": 3.0}}, load_records(synth.TOY)), "diverge").verdict == "pass"


def test_plateau_above_threshold(tmp_path: Path) -> None:
    log = load_records(synth.write(tmp_path / "m.log", synth.megatron_lines([1.0] * 60, total=100)))
    c = check(evaluate_entry({"plateau": {"patience": 3, "window": 10, "below": 0.5}}, log), "plateau")
    assert c.verdict == "fail" and c.details["iterations"] == [1, 40]
    ok = evaluate_entry({"plateau": {"patience": 3, "window": 10, "below": 1.5}}, log)
    assert check(ok, "plateau").verdict == "pass"


# --- speed, memory and cross-checks ------------------------------------------------------------------

SEED_MINDFORMERS = {"name": "mindformers-deepseek-v2-236b-code-alpaca", "dialect": "mindformers",
                    "seq_length": 4096, "global_batch_size": 80, "devices": 64,
                    "floors": {"tokens_per_sec_per_device": 36}}


def _mf_log(tmp_path: Path, steady_ms: float, name: str = "worker_0.log") -> TrainingLog:
    ms = [200_000.0] * 10 + [steady_ms + (37 * k % 7 - 3) * 100 for k in range(30)]
    ms[25] = 600_000.0  # a checkpoint save
    return load_records(synth.write(tmp_path / name, synth.mindformers_lines(ms, synth.losses(40), gbs=80, devices=64)))


def test_seed_mindformers_36_tokens_per_device_around_the_threshold(tmp_path: Path) -> None:
    fast = evaluate_entry(SEED_MINDFORMERS, _mf_log(tmp_path, 141_000.0, "a.log"))
    slow = evaluate_entry(SEED_MINDFORMERS, _mf_log(tmp_path, 142_800.0, "b.log"))
    c = check(fast, "floor.tokens_per_sec_per_device")
    assert c.verdict == "pass" and c.op == ">=" and c.details["statistic"] == "median" and 36 <= c.value < 36.5
    assert "1 outliers excluded" in c.message and c.details["iterations"] == [11, 40]
    assert "samples/s/p" in c.details["record"]
    s = check(slow, "floor.tokens_per_sec_per_device")
    assert s.verdict == "fail" and 35.5 < s.value < 36
    assert fast.metrics["tokens_per_sec_per_device_from"] == "samples/s/p x seq_length"
    assert check(fast, "cross_check.samples_per_device").verdict == "pass"


def test_topology_from_startup_lines_and_missing_topology(tmp_path: Path) -> None:
    head = ["2026-11-23 10:00:00,000 - mindformers - INFO - seq_length: 4096, global_batch_size: 80, device_num: 64"]
    ms = [141_000.0] * 20
    log = load_records(synth.write(tmp_path / "w.log", head + synth.mindformers_lines(ms, synth.losses(20), 80, 64)))
    res = evaluate_entry({"floors": {"tokens_per_sec_per_device": 36}}, log)
    assert check(res, "floor.tokens_per_sec_per_device").verdict == "pass"
    assert res.metrics["devices"] == 64 and res.metrics["topology_source"] == "log start-up lines"
    bare = load_records(synth.write(tmp_path / "x.log", synth.mindformers_lines(ms, synth.losses(20), 80, 64)))
    err = check(evaluate_entry({"floors": {"tokens_per_sec_per_device": 36}}, bare), "floor.tokens_per_sec_per_device")
    assert err.verdict == "error" and "seq_length" in err.message


def test_step_time_derivation_when_samples_are_not_printed(tmp_path: Path) -> None:
    lines = [l for l in synth.mindformers_lines([142_000.0] * 20, synth.losses(20), 80, 64) if "samples/s/p" not in l]
    res = evaluate_entry(SEED_MINDFORMERS, load_records(synth.write(tmp_path / "w.log", lines)))
    c = check(res, "floor.tokens_per_sec_per_device")
    assert c.value == pytest.approx(80 * 4096 / 142 / 64) and c.verdict == "pass"
    assert res.metrics["tokens_per_sec_per_device_from"].startswith("global_batch_size x seq_length")


def test_statistic_named_median_p10_aggregate_on_real_stalls() -> None:
    log = load_records(synth.REAL / "mmengine" / "iter-based")  # 2 s stalls at epoch boundaries
    res = evaluate_entry({"floors": {"tokens_per_sec": 1.0, "tokens_per_sec.p10": 1.0,
                                     "tokens_per_sec.aggregate": 1.0}}, log)
    names = ("floor.tokens_per_sec", "floor.tokens_per_sec.p10", "floor.tokens_per_sec.aggregate")
    med, p10, agg = (check(res, k).value for k in names)
    assert med > 100 * agg  # the stalls dominate the aggregate, not the median
    assert p10 < med and check(res, "floor.tokens_per_sec.aggregate").details["statistic"] == "aggregate"
    assert "outliers excluded" in check(res, "floor.tokens_per_sec").message


def test_aggregate_speed_for_xtuner_uses_devices(toy_log: TrainingLog) -> None:
    res = evaluate_entry({"devices": 8, "batch_size": 4, "sequence_parallel_size": 2,
                          "floors": {"tokens_per_sec_aggregate": 1.0}}, toy_log)
    c = check(res, "floor.tokens_per_sec_aggregate")
    assert c.verdict == "pass" and res.metrics["global_batch_size"] == 16
    per_device = evaluate_entry({"floors": {"tokens_per_sec": 1.0}}, toy_log).metrics["tokens_per_sec.median"]
    assert c.value == pytest.approx(8 * per_device, rel=0.01)


def test_memory_ceiling_uses_the_peak(tmp_path: Path) -> None:
    log = load_records(synth.write(tmp_path / "t.log", synth.torchtitan_lines([2.0] * 5)))
    ok = check(evaluate_entry({"ceilings": {"memory_gib": 12.5}}, log), "ceiling.memory_gib")
    bad = check(evaluate_entry({"ceilings": {"memory_gib": 12.0}}, log), "ceiling.memory_gib")
    assert ok.verdict == "pass" and ok.details["statistic"] == "max" and bad.verdict == "fail" and is_final(bad)


def test_cross_checks_catch_wrong_topology_and_misparsed_speed(tmp_path: Path) -> None:
    real = load_records(synth.REAL / "mindformers" / "console.txt")
    good = evaluate_entry({"global_batch_size": 8, "devices": 1, "warmup_iters": 0}, real)
    bad = evaluate_entry({"global_batch_size": 80, "devices": 1, "warmup_iters": 0}, real)
    name = "cross_check.samples_per_device"
    assert check(good, name).verdict == "pass"
    assert check(bad, name).verdict == "error" and "wrong seq_length" in check(bad, name).message
    toy = load_records(synth.TOY)
    assert check(evaluate_entry({}, toy), "cross_check.tokens_per_iteration").verdict == "pass"
    for k, r in enumerate(toy.records):
        r.metrics["tokens_per_sec"] *= 1 + (k % 3)  # a mis-parse that breaks tokens per iteration
    assert check(evaluate_entry({}, toy), "cross_check.tokens_per_iteration").verdict == "error"


def test_result_is_plain_json(toy_log: TrainingLog) -> None:
    res = evaluate_entry({**SEED_XTUNER, "floors": {"tokens_per_sec": 950}}, toy_log)
    back = json.loads(json.dumps(res.to_json()))
    assert back["verdict"] == "pass" and back["checks"][1]["iterations"] == [1, 1067]
    assert "[pass] converge" in res.summary()


# --- pure statistics --------------------------------------------------------------------------------

def test_statistics_helpers() -> None:
    assert statistic_series([1, 2, 3, 4], "window_mean", 2) == [None, 1.5, 2.5, 3.5]
    wm = statistic_series([1, math.nan, 3, 4, 5], "window_mean", 2)
    assert math.isnan(wm[1]) and math.isnan(wm[2]) and wm[4] == 4.5
    assert statistic_series([2, 4], "ema", 3) == [2, 3.0]
    assert quantile([1, 2, 3, 4], 0.5) == 2.5 and summarise([1, 2, 3, 10], "p10") == pytest.approx(1.3)
    assert summarise([10, 1000], "aggregate", [1, 0.001]) == pytest.approx(11 / 1.001)
