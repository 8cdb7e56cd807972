"""Workload contract checks on hand-built records."""

from __future__ import annotations

import pytest

from pytest_deepseek.serving.contract import (
    STALL_MS,
    ClientHealth,
    ContractViolation,
    check_contract,
    is_client_bound,
)
from pytest_deepseek.serving.load import ClientHealthSample
from pytest_deepseek.serving.records import RequestRecord
from pytest_deepseek.serving.spec import CLIENT_HEALTH_KEYS, ClientLimits
from pytest_deepseek.thresholds import ThresholdsError, parse_thresholds

DEFAULT_LIMITS = ClientLimits()


def rec(i: int, *, prompt: int | None = 1024, completion: int | None = 128, forced: bool = True,
        max_tokens: int = 128, error: str | None = None, warmup: bool = False,
        finish: str | None = "length") -> RequestRecord:
    ok = error is None
    return RequestRecord(
        index=i, request_id=str(i), api="completions", warmup=warmup, input_len=1024,
        max_tokens=max_tokens, forced=forced, t_send=1 + i, event_times=[10 + i] if ok else [],
        event_tokens=[1] if ok else [], prompt_tokens=prompt if ok else None,
        completion_tokens=completion if ok else None, finish_reason=finish if ok else None,
        success=ok, error_kind=error)


def codes(vs: list[ContractViolation]) -> list[str]:
    return [v.code for v in vs]


def test_clean_run_has_no_violation() -> None:
    recs = [rec(i) for i in range(100)]
    assert check_contract(recs, input_len=1024, forced_output_len=128,
                          retokenized={i: 128 for i in range(100)}, retokenize_tolerance=0.02,
                          error_budget=0.01, client_health=ClientHealth(
                              loop_lag_p99_ms=1.0, loop_lag_max_ms=5.0, cpu_fraction=0.3,
                              achieved_concurrency=63.5, target_concurrency=64)) == []


def test_prompt_length_mismatch_counted_with_examples() -> None:
    recs = [rec(i) for i in range(10)] + [rec(10, prompt=1031), rec(11, prompt=1019)]
    [v] = check_contract(recs, input_len=1024, forced_output_len=None, retokenized=None,
                         retokenize_tolerance=0.02, error_budget=0.01, client_health=None)
    assert v.code == "prompt_length" and v.count == 2 and v.examples == (10, 11)
    assert "2 of 12" in v.message and "1031 prompt tokens instead of 1024" in v.message


def test_prompt_target_from_record_and_missing_usage() -> None:
    recs = [rec(0), rec(1, prompt=None)]
    vs = check_contract(recs, input_len=None, forced_output_len=None, retokenized=None,
                        retokenize_tolerance=0.02, error_budget=0.5, client_health=None)
    assert codes(vs) == ["prompt_usage_missing"] and vs[0].count == 1


def test_server_ignoring_forced_length_is_caught() -> None:
    recs = [rec(i) for i in range(5)] + [rec(5 + i, completion=87, finish="stop") for i in range(3)]
    [v] = check_contract(recs, input_len=1024, forced_output_len=None, retokenized=None,
                         retokenize_tolerance=0.02, error_budget=0.01, client_health=None)
    assert v.code == "output_length_not_forced" and v.count == 3
    assert v.message.startswith("server cannot force output length")
    assert "87 output tokens instead of 128" in v.message and "'stop'" in v.message


def test_unforced_requests_are_not_length_checked() -> None:
    recs = [rec(0, forced=False, completion=40)]
    assert check_contract(recs, input_len=1024, forced_output_len=None, retokenized=None,
                          retokenize_tolerance=0.02, error_budget=0.01, client_health=None) == []


def test_usage_vs_retokenization_tolerance() -> None:
    recs = [rec(i) for i in range(4)]
    retok = {0: 128, 1: 130, 2: 140, 3: 100}  # 1.6% ok, 9.4% and 21.9% off
    [v] = check_contract(recs, input_len=1024, forced_output_len=128, retokenized=retok,
                         retokenize_tolerance=0.02, error_budget=0.01, client_health=None)
    assert v.code == "usage_mismatch" and v.count == 2 and v.examples == (2, 3)


def test_error_budget() -> None:
    recs = [rec(i) for i in range(97)] + [rec(97, error="timeout"), rec(98, error="timeout"),
                                          rec(99, error="reset")]
    vs = check_contract(recs, input_len=1024, forced_output_len=128, retokenized=None,
                        retokenize_tolerance=0.02, error_budget=0.02, client_health=None)
    assert codes(vs) == ["error_budget"]
    assert vs[0].count == 3 and "3 of 100" in vs[0].message and "timeout 2" in vs[0].message
    assert check_contract(recs, input_len=1024, forced_output_len=128, retokenized=None,
                          retokenize_tolerance=0.02, error_budget=0.03, client_health=None) == []


def test_warmup_records_ignored() -> None:
    recs = [rec(0), rec(1, prompt=5, warmup=True), rec(2, error="timeout", warmup=True)]
    assert check_contract(recs, input_len=1024, forced_output_len=128, retokenized=None,
                          retokenize_tolerance=0.02, error_budget=0.0, client_health=None) == []


@pytest.mark.parametrize(
    ("health", "code"),
    [
        (ClientHealth(loop_lag_p99_ms=DEFAULT_LIMITS.max_loop_lag_p99_ms + 5), "client_loop_lag"),
        (ClientHealth(loop_lag_max_ms=250.0, stalled_fraction=0.05), "client_loop_stall"),
        (ClientHealth(schedule_lag_p99_ms=40.0), "client_schedule_lag"),
        (ClientHealth(achieved_concurrency=40.0, target_concurrency=64), "client_concurrency"),
        (ClientHealth(achieved_rate=8.0, target_rate=10.0), "client_rate"),
        (ClientHealth(cpu_fraction=0.97), "client_cpu"),
    ],
)
def test_client_bound(health: ClientHealth, code: str) -> None:
    vs = check_contract([rec(0)], input_len=1024, forced_output_len=128, retokenized=None,
                        retokenize_tolerance=0.02, error_budget=0.01, client_health=health)
    assert codes(vs) == [code]
    assert is_client_bound(vs) and vs[0].message.startswith("client-bound")


def test_infinite_target_rate_is_not_a_violation() -> None:
    vs = check_contract([rec(0)], input_len=1024, forced_output_len=128, retokenized=None,
                        retokenize_tolerance=0.02, error_budget=0.01,
                        client_health=ClientHealth(achieved_rate=3.0, target_rate=float("inf")))
    assert vs == [] and not is_client_bound(vs)


def test_a_server_refusing_forced_lengths_is_named():
    from pytest_deepseek.serving.contract import check_contract
    from pytest_deepseek.serving.records import RequestRecord

    records = [RequestRecord(index=i, request_id=str(i), api="completions", forced=True, max_tokens=32, status=422,
                             error_kind="http_4xx", error_detail="HTTP 422: ignore_eos is not supported")
               for i in range(3)]
    violations = check_contract(records, forced_output_len=32)
    codes = [v.code for v in violations]
    assert codes[0] == "output_length_not_forced"
    assert violations[0].message.startswith("server cannot force output length: 3 request(s)")


def test_default_client_limits_are_the_documented_ones() -> None:
    assert DEFAULT_LIMITS.to_json() == {
        "max_loop_lag_p99_ms": 20.0, "max_stalled_fraction": 0.01, "max_schedule_lag_p99_ms": 10.0,
        "min_rate_ratio": 0.95, "min_concurrency_ratio": 0.90, "max_cpu_fraction": 0.90}
    assert tuple(DEFAULT_LIMITS.to_json()) == CLIENT_HEALTH_KEYS


@pytest.mark.parametrize(
    ("health", "limits", "code"),
    [
        (ClientHealth(loop_lag_p99_ms=60.0), ClientLimits(max_loop_lag_p99_ms=50.0), "client_loop_lag"),
        (ClientHealth(stalled_fraction=0.2), ClientLimits(max_stalled_fraction=0.1), "client_loop_stall"),
        (ClientHealth(schedule_lag_p99_ms=60.0), ClientLimits(max_schedule_lag_p99_ms=50.0), "client_schedule_lag"),
        (ClientHealth(achieved_concurrency=20.0, target_concurrency=64),
         ClientLimits(min_concurrency_ratio=0.5), "client_concurrency"),
        (ClientHealth(achieved_rate=4.0, target_rate=10.0), ClientLimits(min_rate_ratio=0.5), "client_rate"),
        (ClientHealth(cpu_fraction=1.6), ClientLimits(max_cpu_fraction=1.5), "client_cpu"),
    ],
)
def test_client_limits_are_the_ones_given(health: ClientHealth, limits: ClientLimits, code: str) -> None:
    """Each limit is read from `client_limits`: a figure beyond the given limit is a violation naming
    the key that sets it; the same figure within it is clean."""
    [v] = check_contract([rec(0)], input_len=1024, forced_output_len=128, client_health=health,
                         client_limits=limits)
    assert v.code == code and v.client_bound
    key = {"client_loop_lag": "max_loop_lag_p99_ms", "client_loop_stall": "max_stalled_fraction",
           "client_schedule_lag": "max_schedule_lag_p99_ms", "client_concurrency": "min_concurrency_ratio",
           "client_rate": "min_rate_ratio", "client_cpu": "max_cpu_fraction"}[code]
    assert f"client_health.{key}" in v.message
    looser = ClientLimits(**{**limits.to_json(), key: 100.0 if key.startswith("max_") else 0.01})
    assert check_contract([rec(0)], input_len=1024, forced_output_len=128, client_health=health,
                          client_limits=looser) == []


def test_client_health_summarises_the_load_sample() -> None:
    sample = ClientHealthSample(loop_lag_ms=[1.0] * 98 + [STALL_MS + 10, STALL_MS + 30],
                                schedule_lag_ms=[0.5] * 100, cpu_s=0.5, wall_s=2.0, target_concurrency=8,
                                mean_in_flight=7.5, target_rate=None, achieved_rate=None)
    health = ClientHealth.of(sample)
    assert health.loop_lag_max_ms == STALL_MS + 30
    assert health.stalled_fraction == pytest.approx((2 * STALL_MS + 40) / 2000)
    assert health.schedule_lag_p99_ms == pytest.approx(0.5)
    assert health.cpu_fraction == pytest.approx(0.25)
    assert health.achieved_concurrency == 7.5 and health.target_concurrency == 8.0
    assert ClientHealth.of(ClientHealthSample()).loop_lag_p99_ms is None


CLIENT_HEALTH_FILE = """\
version: 1
profiles:
  p:
    serving:
      defaults: {client_health: {max_schedule_lag_p99_ms: 100, min_rate_ratio: 0.5}}
      scenarios:
        - {input_len: 8, output_len: 8, concurrency: 1}
        - {input_len: 8, output_len: 8, request_rate: 4, client_health: {min_rate_ratio: 0.8}}
"""


def test_client_health_from_the_thresholds_file_merges_key_by_key() -> None:
    first, second = parse_thresholds(CLIENT_HEALTH_FILE).profiles["p"].scenarios
    assert first.client_limits == ClientLimits(max_schedule_lag_p99_ms=100, min_rate_ratio=0.5)
    assert second.client_limits == ClientLimits(max_schedule_lag_p99_ms=100, min_rate_ratio=0.8)
    assert parse_thresholds(CLIENT_HEALTH_FILE.replace("client_health: {min_rate_ratio: 0.8}", "warmup: 1")
                            ).profiles["p"].scenarios[1].client_limits.min_rate_ratio == 0.5


@pytest.mark.parametrize(("entry", "message"), [
    ("max_schedule_lag_ms: 5", "unknown key 'max_schedule_lag_ms' in client_health mapping; did you mean "
                               "'max_schedule_lag_p99_ms'?"),
    ("min_rate_ratio: 1.5", "expected a number >= 0 and <= 1"),
    ("max_loop_lag_p99_ms: 0", "expected a number > 0"),
])
def test_client_health_keys_and_values_are_checked(entry: str, message: str) -> None:
    text = CLIENT_HEALTH_FILE.replace("min_rate_ratio: 0.8", entry)
    with pytest.raises(ThresholdsError, match=r":8: profiles\.p\.serving\.scenarios\[1\]\.client_health") as info:
        parse_thresholds(text)
    assert message in str(info.value)
