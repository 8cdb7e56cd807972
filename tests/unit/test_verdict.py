"""The one result type and the one verdict rule of the three gates."""

from __future__ import annotations

import json

import pytest

from pytest_deepseek.verdict import PRECEDENCE, Check, GateResult, combine


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], "pass"),
        (["pass", "pass"], "pass"),
        (["pass", "inconclusive"], "inconclusive"),
        (["inconclusive", "fail"], "fail"),
        (["fail", "error"], "error"),
        (["error", "pass"], "error"),
    ],
)
def test_one_precedence(verdicts: list[str], expected: str) -> None:
    assert combine(verdicts) == expected


def test_precedence_is_error_fail_inconclusive_pass() -> None:
    assert PRECEDENCE == ("error", "fail", "inconclusive", "pass")


def test_allow_inconclusive_passes_only_the_undecided() -> None:
    assert combine(["inconclusive", "pass"], allow_inconclusive=True) == "pass"
    assert combine(["inconclusive", "fail"], allow_inconclusive=True) == "fail"


def test_an_unknown_verdict_is_a_bug_not_a_pass() -> None:
    with pytest.raises(ValueError, match="unknown verdict"):
        combine(["passed"])


def _result(**overrides: object) -> GateResult:
    checks = [Check("floor.output_throughput", "pass", "ok", metric="output_throughput", op=">=", threshold=10.0,
                    value=12.0, low=11.0, details={"method": "batch means"}),
              Check("ceiling.ttft_ms.p99", "fail", "TTFT p99 too high", metric="ttft_ms.p99", op="<=",
                    threshold=100.0, value=150.0)]
    fields: dict[str, object] = dict(metrics={"output_throughput": 12.0}, figures={"ttft_ms.p99": 150.0},
                                     locations={"records": "/r/records.jsonl", "log": "/r/logs/a.log"},
                                     details={"scenario": {"input_len": 32}})
    fields.update(overrides)
    return GateResult.decide("serving", "p", "in32-out8-c2", checks, **fields)  # type: ignore[arg-type]


def test_a_problem_makes_the_result_an_error_whatever_the_checks_say() -> None:
    assert _result().verdict == "fail"
    result = _result(problems=("prompt tokens differ from the target",))
    assert result.verdict == "error"
    assert "prompt tokens differ" in result.failure_text()


def test_failure_text_says_expected_measured_and_where_the_records_are() -> None:
    text = _result(simulated=True).failure_text()
    assert text.splitlines()[0] == "FAIL: p in32-out8-c2 [SIMULATED]"
    assert "[fail] ceiling.ttft_ms.p99: TTFT p99 too high" in text
    assert "records: /r/records.jsonl" in text and "log: /r/logs/a.log" in text
    assert "floor.output_throughput" not in text  # passing checks are not repeated


def test_json_round_trip_keeps_every_field() -> None:
    result = _result(warnings=("short window",), fingerprint={"plugin_version": "0.1.0"})
    data = json.loads(json.dumps(result.to_json()))
    assert data["records"] == "/r/records.jsonl" and data["scenario"] == {"input_len": 32}
    assert data["checks"][0]["method"] == "batch means"
    assert GateResult.from_json(data) == result


def test_check_names_are_made_unique_in_order() -> None:
    checks = [Check("loss", "pass", "a"), Check("loss", "fail", "b"), Check("loss", "pass", "c")]
    result = GateResult.decide("training", "p", "e:convergence", checks)
    assert [c.name for c in result.checks] == ["loss", "loss#2", "loss#3"]


def test_junit_properties_are_unique_and_carry_figures() -> None:
    props = _result(problems=("x",), warnings=("w1", "w2")).junit_properties()
    names = [name for name, _ in props]
    assert len(names) == len(set(names))
    values = dict(props)
    assert values["deepseek.verdict"] == "error" and values["deepseek.ttft_ms.p99"] == 150.0
    assert values["deepseek.errors"] == "x" and values["deepseek.warnings"] == "w1; w2"
    assert values["deepseek.check.ceiling.ttft_ms.p99"].startswith("fail: ")


def test_details_may_not_shadow_common_keys() -> None:
    with pytest.raises(ValueError, match="may not redefine"):
        _result(details={"verdict": "pass"})
    with pytest.raises(ValueError, match="unknown location"):
        _result(locations={"elsewhere": "/x"})
