"""Two runs compared metric by metric (pure): synthetic serving runs with a known truth, accuracy items,
training figures, and the checks they add to a result."""

from __future__ import annotations

import functools

import pytest

from pytest_deepseek.regression.change import paired_score_change
from pytest_deepseek.regression.compare import Evidence, compare_metric, compare_test, match_tests, with_regression
from pytest_deepseek.regression.evidence import (AccuracyMaterial, Compared, ConvergeFigures, Estimate,
                                                 ServingMaterial, SpeedSeries, TrainingMaterial, speed_estimate)
from pytest_deepseek.regression.spec import (ACCURACY, CONVERGED_VALUE, HIGHER, LATENCY, LOWER, THROUGHPUT,
                                             RegressionSpec, Tolerance)
from pytest_deepseek.serving.judge import bucket_seconds_for
from pytest_deepseek.serving.metrics import bucket_series, compute_run_metrics
from pytest_deepseek.testing.synthetic import generate_run
from pytest_deepseek.verdict import Check, GateResult

SERVING = GateResult("serving", "p", "in1024-out64-c16", "pass")
DEFAULTS = RegressionSpec.of()


@functools.lru_cache(maxsize=None)
def synthetic(true_throughput: float, seed: int, num_prompts: int = 6000) -> ServingMaterial:
    """A closed-loop run at 16 clients with a small slow drift, judged as the simulator is (no batch floor)."""
    run = generate_run(true_throughput, seed=seed, num_prompts=num_prompts, concurrency=16, mean_output_len=64,
                       ar_sigma=0.02)
    metrics = compute_run_metrics(run.records, run.timeline)
    bucket_s = bucket_seconds_for(metrics.window_s)
    return ServingMaterial(metrics, bucket_series(run.records, metrics, bucket_s=bucket_s), bucket_s, 0.0, 0.95)


def serving(a: ServingMaterial, b: ServingMaterial, spec: RegressionSpec = DEFAULTS) -> dict[str, object]:
    comparison = compare_test(Evidence("t", SERVING, a), Evidence("t", SERVING, b), spec)
    return {m.metric: m for m in comparison.metrics}


def test_a_run_against_itself_passes_everywhere() -> None:
    run = synthetic(1000.0, seed=1)
    compared = serving(run, run)
    assert list(compared) == ["output_throughput_per_node", "input_throughput_per_node", "ttft_ms.p99",
                              "tpot_ms.p99", "error_rate"]
    for m in compared.values():
        assert m.verdict == "pass", m.message()
        assert m.change == 0 and m.significant == "no" and m.low < 0 < m.high


def test_ten_percent_slower_fails_a_three_percent_tolerance() -> None:
    compared = serving(synthetic(1000.0, seed=1), synthetic(900.0, seed=2))
    throughput = compared["output_throughput_per_node"]
    assert throughput.verdict == "fail" and throughput.significant == "worse"
    assert -0.14 < throughput.relative_change < -0.06 and throughput.high < -0.03
    check = throughput.check("main")
    assert check.name == "regression.output_throughput_per_node" and check.op == ">=" and check.threshold == -0.03
    assert check.details["against"] == "main" and check.details["tolerance"] == "3%"
    assert "worse than the tolerance allows" in check.message and "FAIL" in check.message
    assert Check.from_json(check.to_json()) == check
    # the same slow-down with a 20% tolerance is within it, beyond the noise
    loose = serving(synthetic(1000.0, seed=1), synthetic(900.0, seed=2),
                    RegressionSpec.of({"output_throughput_per_node": "20%"}))
    assert loose["output_throughput_per_node"].verdict == "pass"
    assert loose["output_throughput_per_node"].significant == "worse"


def test_a_tiny_run_cannot_tell() -> None:
    tiny_a, tiny_b = synthetic(1000.0, seed=3, num_prompts=60), synthetic(980.0, seed=4, num_prompts=60)
    compared = serving(tiny_a, tiny_b)
    for metric in ("output_throughput_per_node", "ttft_ms.p99", "tpot_ms.p99", "error_rate"):
        assert compared[metric].verdict == "inconclusive", compared[metric].message()
    assert "has no upper bound" in compared["ttft_ms.p99"].why_undecided()  # 60 requests cannot bound a p99
    assert "longer runs would tell" in compared["error_rate"].why_undecided()


def test_latency_is_better_lower_and_throughput_higher() -> None:
    slow, fast = synthetic(900.0, seed=2), synthetic(1000.0, seed=1)
    faster = serving(slow, fast)  # B faster than A: TPOT down, throughput up
    assert faster["tpot_ms.p99"].relative_change < -0.05 and faster["tpot_ms.p99"].significant == "better"
    assert faster["tpot_ms.p99"].verdict == "pass" and faster["tpot_ms.p99"].op == "<="
    assert faster["output_throughput_per_node"].significant == "better"
    assert faster["output_throughput_per_node"].verdict == "pass"
    slower = serving(fast, slow)
    assert slower["tpot_ms.p99"].significant == "worse" and slower["tpot_ms.p99"].verdict == "fail"
    assert slower["tpot_ms.p99"].check().threshold == pytest.approx(0.10)
    # the rule itself, on fixed figures: +20% is a regression for a latency, an improvement for a throughput
    a, b = Estimate(100.0, 99.0, 101.0, "a"), Estimate(120.0, 119.0, 121.0, "b")
    ten = Tolerance(0.10, True)
    assert compare_metric(Compared("e2e_ms.p50", LATENCY, LOWER), ten, a, b, 0.95).verdict == "fail"
    assert compare_metric(Compared("goodput", THROUGHPUT, HIGHER), ten, a, b, 0.95).verdict == "pass"
    assert compare_metric(Compared("goodput", THROUGHPUT, HIGHER), ten, b, a, 0.95).verdict == "fail"
    stopped = compare_metric(Compared("goodput", THROUGHPUT, HIGHER), ten, a, Estimate(0.0, 0.0, 0.5, "b"), 0.95)
    assert stopped.relative_change == -1.0 and stopped.verdict == "fail"  # nothing left is a relative drop too
    from_zero = compare_metric(Compared("error_rate", LATENCY, LOWER), ten, Estimate(0.0, 0.0, 0.01, "a"), b, 0.95)
    assert from_zero.verdict == "inconclusive" and "cannot apply" in from_zero.method


def items(right: int, wrong: int, prefix: str = "q") -> dict[str, float]:
    return {f"{prefix}{i}": 1.0 if i < right else 0.0 for i in range(right + wrong)}


def accuracy(a_items: dict[str, float] | None, b_items: dict[str, float] | None, n: int, a_score: float,
             b_score: float, spec: RegressionSpec = DEFAULTS) -> object:
    result = GateResult("accuracy", "p", "mmlu", "pass")
    comparison = compare_test(Evidence("t", result, AccuracyMaterial(a_score, n, a_items, 0.95)),
                              Evidence("t", result, AccuracyMaterial(b_score, n, b_items, 0.95)), spec)
    (score,) = comparison.metrics
    return score


def test_paired_items_tell_a_drop_the_two_scores_alone_cannot() -> None:
    n = 2000
    a_items = items(1800, 200)  # 90.0%
    b_items = dict(a_items)
    for i in range(60):  # lose 60 items the baseline had right, gain 10 it had wrong: -2.5 points
        b_items[f"q{i}"] = 0.0
    for i in range(1800, 1810):
        b_items[f"q{i}"] = 1.0
    paired = accuracy(a_items, b_items, n, 90.0, 87.5)
    assert paired.change == pytest.approx(-2.5) and paired.verdict == "fail" and paired.significant == "worse"
    assert "paired on 2000 items (60 lost, 10 gained)" in paired.method and paired.high < -1.0
    unpaired = accuracy(None, None, n, 90.0, 87.5)
    assert unpaired.verdict == "inconclusive" and "Clopper-Pearson" in unpaired.method
    assert unpaired.low < paired.low and unpaired.high > paired.high
    same = accuracy(a_items, a_items, n, 90.0, 90.0)
    assert same.verdict == "pass" and same.change == 0 and -0.5 < same.low < 0 < same.high < 0.5
    few = accuracy(items(6, 2), items(6, 2), 8, 75.0, 75.0)  # agreeing on 8 items says little
    assert few.verdict == "inconclusive" and few.low < -10


def test_paired_items_averaged_over_repeats_use_the_per_item_differences() -> None:
    a = {f"q{i}": 0.75 if i % 2 else 0.5 for i in range(400)}
    b = {k: v - 0.25 if k in {f"q{i}" for i in range(100)} else v for k, v in a.items()}
    change = paired_score_change(a, b, 0.95)
    assert change is not None and change.items == 400 and change.change == pytest.approx(-6.25)
    assert change.high < -1.0 and "paired per-item differences" in change.method
    assert paired_score_change(a, {"other": 1.0}, 0.95) is None


def test_training_speed_and_convergence_are_compared_on_their_own_statistics() -> None:
    steady = tuple(1000.0 + (i % 7) for i in range(200))
    slower = tuple(v * 0.9 for v in steady)
    a = TrainingMaterial(speeds=(SpeedSeries("tokens_per_sec", ">=", "median", 1003.0, steady),))
    b = TrainingMaterial(speeds=(SpeedSeries("tokens_per_sec", ">=", "median", 902.7, slower),))
    result = GateResult("training", "p", "toy:speed", "pass")
    (speed,) = compare_test(Evidence("t", result, a), Evidence("t", result, b), DEFAULTS).metrics
    assert speed.verdict == "fail" and speed.direction == HIGHER and "order statistics" in speed.b.method
    mean = speed_estimate(SpeedSeries("tokens_per_sec", ">=", "mean", 1003.0, steady), 0.95)
    assert mean.low < 1003.0 < mean.high and "batch means" in mean.method
    missing = speed_estimate(SpeedSeries("tokens_per_sec", ">=", "median", 1003.0, None, "log moved"), 0.95)
    assert missing.low is None and "log moved" in missing.method

    def converge(best: float, first: int | None) -> TrainingMaterial:
        return TrainingMaterial(converge=ConvergeFigures("loss", best, 5e-5, first, 10))

    result = GateResult("training", "p", "toy:convergence", "pass")
    compared = {m.metric: m for m in compare_test(Evidence("t", result, converge(0.0010, 1000)),
                                                  Evidence("t", result, converge(0.0012, 1050)),
                                                  DEFAULTS).metrics}
    assert compared["loss"].family == CONVERGED_VALUE and compared["loss"].verdict == "fail"  # +20% > 1%
    assert compared["iterations_to_converge"].verdict == "pass"  # +5% <= 10%
    never = compare_test(Evidence("t", result, converge(0.0010, 1000)),
                         Evidence("t", result, converge(0.0020, None)), DEFAULTS).metrics
    assert {m.metric: m.verdict for m in never}["iterations_to_converge"] == "inconclusive"


def test_regression_checks_join_the_result_under_the_one_rule() -> None:
    a, b = Estimate(100.0, 99.0, 101.0, "a"), Estimate(80.0, 79.0, 81.0, "b")
    fail = compare_metric(Compared("output_throughput", THROUGHPUT, HIGHER), Tolerance(0.03, True), a, b,
                          0.95).check()
    undecided = compare_metric(Compared("score", ACCURACY, HIGHER), Tolerance(1.0, False),
                               Estimate(90.0, None, None, "?"), Estimate(90.0, None, None, "?"), 0.95).check()
    floor = Check("floor.output_throughput", "pass", "ok")
    passed = GateResult.decide("serving", "p", "s", [floor])
    assert with_regression(passed, [fail]).verdict == "fail"
    assert [c.name for c in with_regression(passed, [fail]).checks] == ["floor.output_throughput",
                                                                         "regression.output_throughput"]
    assert with_regression(passed, [undecided]).verdict == "inconclusive"
    assert with_regression(passed, [undecided], allow_inconclusive=True).verdict == "pass"
    errored = GateResult.decide("serving", "p", "s", [floor], problems=["client-bound"])
    assert with_regression(errored, [fail]).verdict == "error"


def test_a_result_whose_figures_cannot_be_trusted_is_not_compared() -> None:
    run = synthetic(1000.0, seed=1)
    broken = GateResult.decide("serving", "p", "s", [], problems=["prompt tokens 63 != 64"])
    comparison = compare_test(Evidence("t", broken, run), Evidence("t", SERVING, run), DEFAULTS)
    assert comparison.verdict == "error" and comparison.metrics == ()
    (check,) = comparison.checks()
    assert check.name == "regression" and check.verdict == "error" and "prompt tokens 63 != 64" in check.message


def test_tests_are_matched_by_id_then_profile_and_case_then_case() -> None:
    def test(nodeid: str, profile: str, case: str, kind: str = "serving") -> Evidence:
        return Evidence(nodeid, GateResult(kind, profile, case, "pass"), AccuracyMaterial(None, None, None, 0.95))

    a = [test("x::t[h800:c1]", "h800", "c1"), test("x::t[h800:c2]", "h800", "c2"),
         test("y::acc[h800:mmlu]", "h800", "mmlu", "accuracy"), test("gone", "h800", "c9")]
    b = [test("x::t[h800:c1]", "h800", "c1"), test("renamed::t[h800:c2]", "h800", "c2"),
         test("y::acc[h20:mmlu]", "h20", "mmlu", "accuracy"), test("new", "h20", "c7")]
    pairs, only_a, only_b = match_tests(a, b)
    assert [(x.nodeid, y.nodeid) for x, y in pairs] == [("x::t[h800:c1]", "x::t[h800:c1]"),
                                                        ("x::t[h800:c2]", "renamed::t[h800:c2]"),
                                                        ("y::acc[h800:mmlu]", "y::acc[h20:mmlu]")]
    assert [t.nodeid for t in only_a] == ["gone"] and [t.nodeid for t in only_b] == ["new"]


def test_nothing_compared_is_not_a_pass() -> None:
    from pytest_deepseek.regression.compare import CaseComparison

    assert CaseComparison("serving", "p:s", "t::a", "t::a").verdict == "inconclusive"
    assert CaseComparison("serving", "p:s", "t::a", "t::a", problems=("not measured",)).verdict == "error"
