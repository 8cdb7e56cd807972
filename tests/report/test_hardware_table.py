"""The cross-hardware table: one row per scenario, never two scenarios folded into one row."""

from __future__ import annotations

from pytest_deepseek.report.terminal import hardware_table
from pytest_deepseek.verdict import Check, GateResult
from rich.console import Console


def _serving(profile: str, case_id: str, api: str, tok_s: float) -> GateResult:
    check = Check(name="floor.output_throughput_per_node", verdict="pass", message="ok")
    return GateResult.decide("serving", profile, case_id, [check],
                             metrics={"output_throughput_per_node": tok_s},
                             details={"scenario": {"input_len": 32, "output_len": 16, "concurrency": 2, "api": api}})


def _text(results: list[GateResult]) -> str:
    table = hardware_table(results, simulated=False)
    assert table is not None
    console = Console(width=200, color_system=None)
    with console.capture() as captured:
        console.print(table)
    return captured.get()


def test_scenarios_sharing_lengths_and_load_keep_a_row_each() -> None:
    results = [_serving(profile, case_id, api, tok_s)
               for profile, base in (("a800", 1000.0), ("h800", 2000.0))
               for case_id, api, tok_s in (("chat-in32", "chat", base + 1.0), ("text-in32", "completions", base + 2.0))]
    text = _text(results)
    assert any(line.split()[:1] == ["scenario"] for line in text.splitlines())
    for figure in ("1,001.00", "1,002.00", "2,001.00", "2,002.00"):
        assert figure in text, figure
    rows = [line for line in text.splitlines() if "-in32" in line]
    assert [row.split()[0] for row in rows] == ["chat-in32", "text-in32"]


def test_one_scenario_per_lengths_and_load_needs_no_id_column() -> None:
    text = _text([_serving("a800", "in32-out16-c2", "chat", 1000.0), _serving("h800", "in32-out16-c2", "chat", 2000.0)])
    assert "scenario" not in text and "in32-out16-c2" not in text
    assert "1,000.00" in text and "2,000.00" in text


def test_one_scenario_named_differently_by_two_profiles_stays_on_one_row() -> None:
    text = _text([_serving("a800", "in32-out16-c2", "chat", 1000.0),
                  _serving("h800", "chat-in32-out16-c2", "chat", 2000.0)])
    rows = [line for line in text.splitlines() if "1,000.00" in line or "2,000.00" in line]
    assert len(rows) == 1 and "1,000.00" in rows[0] and "2,000.00" in rows[0]
