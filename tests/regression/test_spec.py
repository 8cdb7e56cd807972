"""The `regression:` thresholds fragment: tolerances, directions, defaults, and errors that name the key."""

from __future__ import annotations

import pytest

from pytest_deepseek.regression.spec import (DEFAULT_TOLERANCES, FAMILY_TOLERANCES, HIGHER, LATENCY, LOWER,
                                             REGRESSION_SECTION, THROUGHPUT, RegressionSpec, Tolerance,
                                             bound_direction, serving_direction, serving_family)
from pytest_deepseek.schema import SchemaError
from pytest_deepseek.serving.metric_names import gateable_metrics, latency_names, throughput_names


def test_a_percent_is_relative_and_a_number_absolute() -> None:
    assert Tolerance.parse("3%") == Tolerance(0.03, True)
    assert Tolerance.parse(" 12.5 % ") == Tolerance(0.125, True)
    assert Tolerance.parse(1) == Tolerance(1.0, False)
    assert Tolerance.parse(0.01).text() == "0.01" and Tolerance.parse("10%").text() == "10%"
    for bad in ("3", "-3%", "three%", -1, float("nan"), True, None):
        with pytest.raises(ValueError):
            Tolerance.parse(bad)


def test_every_serving_metric_has_one_direction() -> None:
    for name in throughput_names():
        assert serving_family(name) == THROUGHPUT and serving_direction(name) == HIGHER
    for name in latency_names():
        assert serving_family(name) == LATENCY and serving_direction(name) == LOWER
    assert serving_direction("good_fraction") == HIGHER and serving_direction("error_rate") == LOWER
    assert {serving_family(name) for name in gateable_metrics()} == {"throughput", "latency", "rate"}
    assert bound_direction(">=") == HIGHER and bound_direction("<=") == LOWER and bound_direction("<") == LOWER


def test_the_section_is_validated_with_the_key_named() -> None:
    ok = {"output_throughput_per_node": "3%", "ttft_ms.p99": "10%", "score": 1.0, "tokens_per_sec": "3%",
          "loss": "1%", "iterations_to_converge": "10%", "error_rate": 0.02}
    assert REGRESSION_SECTION.check(ok, ("regression",)) == ok
    with pytest.raises(SchemaError, match="did you mean 'ttft_ms.p99'") as typo:
        REGRESSION_SECTION.check({"ttft_ms.p999": "10%"}, ("regression",))
    assert typo.value.path == ("regression", "ttft_ms.p999")
    with pytest.raises(SchemaError, match="needs a statistic"):
        REGRESSION_SECTION.check({"tpot_ms": "10%"}, ("regression",))
    with pytest.raises(SchemaError, match="a percent such as '3%'"):
        REGRESSION_SECTION.check({"score": "1 point"}, ("regression",))
    with pytest.raises(SchemaError, match="did you mean 'output_throughput_per_node'"):
        REGRESSION_SECTION.check({"output_throughput_per_nod": "3%"}, ("regression",))


def test_named_tolerances_win_and_families_fill_in() -> None:
    spec = RegressionSpec.of({"ttft_ms.p99": "25%", "e2e_ms.p90": "5%"})
    assert spec.tolerance("ttft_ms.p99", LATENCY) == Tolerance(0.25, True)
    assert spec.tolerance("output_throughput_per_node", THROUGHPUT) == Tolerance(0.03, True)
    assert spec.tolerance("tpot_ms.p50", LATENCY) == Tolerance.parse(FAMILY_TOLERANCES[LATENCY])
    # compared: the named serving metrics (defaults included), then the scenario's own floors and ceilings
    assert spec.serving_metrics(["request_throughput", "ttft_ms.p99"]) == [
        *[m for m in DEFAULT_TOLERANCES if m != "score"], "e2e_ms.p90", "request_throughput"]
    with pytest.raises(ValueError, match="regression.score"):
        RegressionSpec.of({"score": "lots"})
    with pytest.raises(ValueError, match="confidence"):
        RegressionSpec.of(confidence=1.5)
