"""Fault selection (pure): selectors, the seeded draw, precedence, legacy keys, config and URLs."""

from __future__ import annotations

import pytest

from pytest_deepseek.sim.config import SimConfig, SimConfigError
from pytest_deepseek.sim.faults import (
    FAULT_NAMES,
    STATUS_FAULTS,
    FaultHit,
    FaultPlan,
    FaultSpecError,
    Selector,
    draw,
    parse_selector,
)
from pytest_deepseek.sim.urls import parse_sim_url, to_sim_url

SPEC_NAMES = {"http_500", "http_502", "http_503", "rate_limited", "reset_before_headers", "reset_midstream", "stall",
              "malformed", "error_event", "no_done", "no_usage", "truncated", "slow_headers", "endless", "refused"}


def picks(plan: FaultPlan, n: int = 12) -> list[str | None]:
    return [hit.name if (hit := plan.pick(i)) else None for i in range(1, n + 1)]


def test_the_names_are_the_contracts_and_status_faults_have_their_codes() -> None:
    assert set(FAULT_NAMES) == SPEC_NAMES and len(FAULT_NAMES) == len(SPEC_NAMES)
    assert STATUS_FAULTS == {"http_500": 500, "http_502": 502, "http_503": 503, "rate_limited": 429}


def test_selector_forms() -> None:
    assert parse_selector("every:3") == Selector(every=3)
    assert parse_selector(" at: 2, 5 ,9") == Selector(at=frozenset({2, 5, 9}))
    assert parse_selector("prob:0.25") == Selector(prob=0.25)
    every = parse_selector("every:3")
    assert [i for i in range(1, 10) if every.selects(i, seed=0, name="stall")] == [3, 6, 9]
    at = parse_selector("at:2,5")
    assert [i for i in range(1, 10) if at.selects(i, seed=0, name="stall")] == [2, 5]
    assert not any(parse_selector("prob:0").selects(i, seed=0, name="stall") for i in range(1, 200))
    assert all(parse_selector("prob:1").selects(i, seed=0, name="stall") for i in range(1, 200))


@pytest.mark.parametrize("text", ["every:0", "every:x", "every:", "prob:1.5", "prob:-0.1", "prob:half", "at:",
                                  "at:0", "at:1,,2", "sometimes", "each:2", "3"])
def test_bad_selectors_are_rejected(text: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_selector(text)


def test_probability_draw_is_seeded_by_seed_name_and_number() -> None:
    assert draw(7, "stall", 3) == draw(7, "stall", 3)
    assert draw(7, "stall", 3) != draw(8, "stall", 3) and draw(7, "stall", 3) != draw(7, "no_done", 3)
    values = [draw(1, "stall", i) for i in range(1, 4001)]
    assert all(0.0 <= v < 1.0 for v in values)
    plan = FaultPlan({"stall": "prob:0.2"}, seed=1)
    hits = sum(plan.pick(i) is not None for i in range(1, 4001))
    assert 700 < hits < 900  # 800 expected; 4000 draws give a standard deviation of about 25
    assert picks(plan, 50) == picks(FaultPlan({"stall": "prob:0.2"}, seed=1), 50)
    assert picks(plan, 50) != picks(FaultPlan({"stall": "prob:0.2"}, seed=2), 50)


def test_first_in_the_documented_order_wins() -> None:
    # Listed out of order on purpose: the order of FAULT_NAMES decides, not the mapping's.
    plan = FaultPlan({"no_usage": "every:1", "stall": "every:2", "http_503": "every:3", "refused": "at:6"}, seed=0)
    assert picks(plan, 7) == ["no_usage", "stall", "http_503", "stall", "no_usage", "refused", "no_usage"]
    assert FAULT_NAMES.index("refused") == 0 and FAULT_NAMES.index("http_503") < FAULT_NAMES.index("stall")


def test_legacy_keys_are_every_n_selectors() -> None:
    plan = FaultPlan({}, seed=0, legacy={"fail_every": 4, "fail_midstream_every": 3, "error_event_every": 0})
    assert picks(plan, 8) == [None, None, "reset_midstream", "http_500", None, "reset_midstream", None, "http_500"]
    assert plan.pick(3) == FaultHit("reset_midstream", "fail_midstream_every")
    both = FaultPlan({"reset_midstream": "at:3"}, seed=0, legacy={"fail_midstream_every": 3})
    assert both.pick(3) == FaultHit("reset_midstream", "fault_reset_midstream")  # the new key first
    assert not FaultPlan({}, seed=0, legacy={"fail_every": 0}) and both


def test_config_accepts_fault_keys_and_round_trips() -> None:
    url = ("sim://deepseek-v3?fault_stall=every:5&fault_http_503=at:1,4&fault_no_usage=prob:0.3"
           "&stall_s=0.25&retry_after_s=7&refused_s=1.5&header_trickle_s=0.01&fail_every=9")
    config = parse_sim_url(url)
    assert dict(config.faults) == {"stall": "every:5", "http_503": "at:1,4", "no_usage": "prob:0.3"}
    assert (config.stall_s, config.retry_after_s, config.refused_s, config.header_trickle_s) == (0.25, 7, 1.5, 0.01)
    assert parse_sim_url(to_sim_url(config)) == config
    assert SimConfig.from_json_dict(config.to_json_dict()) == config
    defaults = SimConfig()
    assert (defaults.stall_s, defaults.retry_after_s, defaults.refused_s, defaults.header_trickle_s) == (
        3600.0, 1, 2.0, 0.5)


def test_config_rejects_bad_faults_listing_names_and_forms() -> None:
    with pytest.raises(SimConfigError) as info:
        parse_sim_url("sim://fast?fault_http_404=every:2")
    message = str(info.value)
    assert "'http_404'" in message and all(name in message for name in FAULT_NAMES)
    assert "every:N" in message and "prob:P" in message and "at:N,N,..." in message
    with pytest.raises(SimConfigError, match=r"fault_stall='sometimes'.*every:N.*refused"):
        parse_sim_url("sim://fast?fault_stall=sometimes")
    with pytest.raises(SimConfigError, match="stall_s='long': expected float"):
        parse_sim_url("sim://fast?stall_s=long")
    with pytest.raises(SimConfigError, match=r"unknown sim option 'stall'.*fault_<name>=<selector>"):
        parse_sim_url("sim://fast?stall=every:2")
