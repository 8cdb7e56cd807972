"""The pass rule: errors first, `min:`, `reference: ± tolerance:` with totals and with paired items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_deepseek.accuracy import ItemResult, ScoreRecord, judge


def record(right: int, n: int, **kw) -> ScoreRecord:
    return ScoreRecord(dataset=kw.pop("dataset", "cluewsc-test"), metric="accuracy",
                       score=round(100.0 * right / n, 2), n=n, backend="opencompass", **kw)


def items(outcomes: list[int], prefix: str = "cluewsc-test/") -> tuple[ItemResult, ...]:
    return tuple(ItemResult(f"{prefix}{i}", float(v)) for i, v in enumerate(outcomes))


# The seeds' numbers: 155/159 = 97.48 on cluewsc-dev, 929/976 = 95.18 on cluewsc-test.

def test_one_question_on_159_does_not_fail_a_one_point_tolerance() -> None:
    check = judge({"name": "cluewsc-dev", "reference": 97.48, "tolerance": 1.0}, record(154, 159), expected_items=159)
    assert check.verdict == "pass"
    assert check.value == 96.86 and check.threshold == pytest.approx(96.48)
    assert "1.0 item(s) lower" in check.message
    assert check.metrics["gap_items"] == pytest.approx(0.99, abs=0.01)


def test_small_set_warns_it_cannot_resolve_the_tolerance() -> None:
    check = judge({"name": "cluewsc-dev", "reference": 97.48, "tolerance": 1.0}, record(154, 159), expected_items=None)
    assert len(check.warnings) == 1
    assert "too small to resolve the tolerance" in check.warnings[0]
    assert check.metrics["resolvable_drop"] == pytest.approx(3.09, abs=0.01)


def test_three_point_drop_on_976_fails() -> None:
    check = judge({"name": "cluewsc-test", "reference": 95.18, "tolerance": 1.0}, record(900, 976), expected_items=976)
    assert check.verdict == "fail"
    assert check.metrics["gap_items"] == pytest.approx(29.0, abs=0.1)
    assert "threshold 94.18%" in check.message


def test_min_is_at_least() -> None:
    assert judge({"name": "cluewsc-dev", "min": 96.0}, record(155, 159), expected_items=None).verdict == "pass"
    failed = judge({"name": "cluewsc-dev", "min": 98.0}, record(155, 159), expected_items=None)
    assert failed.verdict == "fail" and failed.threshold == 98.0
    assert "0.8 items below" in failed.message


def test_min_and_reference_must_both_hold() -> None:
    entry = {"name": "cluewsc-test", "min": 93.0, "reference": 95.18, "tolerance": 3.0}
    assert judge(entry, record(903, 976), expected_items=None).verdict == "fail"  # 92.52: within tolerance, below min
    assert judge({**entry, "min": 90.0, "tolerance": 1.0}, record(908, 976), expected_items=None).verdict == "fail"
    assert judge(entry, record(910, 976), expected_items=None).verdict == "pass"


def test_metrics_are_plain_json_with_interval() -> None:
    check = judge({"name": "cluewsc-dev", "min": 90.0}, record(155, 159), expected_items=None)
    data = json.loads(json.dumps(check.metrics))
    assert data["score"] == 97.48 and data["n"] == 159 and data["errored"] == 0
    lo, hi = data["interval"]
    assert lo < 97.48 < hi and hi <= 100.0


@pytest.mark.parametrize(
    ("kw", "expected_items", "why"),
    [
        ({"errored": 1}, None, "1 item(s) errored"),
        ({"incomplete": True, "requested": 160}, None, "incomplete (159 of 160 items scored)"),
        ({}, 976, "scored 159 items, expected 976"),
        ({"problems": ("OpenCompass printed '-'",)}, None, "printed '-'"),
        ({"config_version": "abc123"}, None, "config version abc123 (expected 5ab83b)"),
    ],
)
def test_untrustworthy_runs_are_errors_never_passes(kw: dict, expected_items: int | None, why: str) -> None:
    entry = {"name": "cluewsc-dev", "min": 10.0, "version": "5ab83b"}
    if "config_version" not in kw:
        kw["config_version"] = "5ab83b"
    check = judge(entry, record(155, 159, **kw), expected_items=expected_items)
    assert check.verdict == "error"
    assert why in check.message


def test_missing_record_is_an_error() -> None:
    check = judge({"name": "math_500", "min": 90.0}, None, expected_items=None)
    assert check.verdict == "error" and "no score" in check.message


def test_expected_items_from_the_entry() -> None:
    check = judge({"name": "cluewsc-dev", "min": 10.0, "expected_items": 160}, record(155, 159), expected_items=None)
    assert check.verdict == "error"


def test_measured_spread_replaces_binomial_error() -> None:
    entry = {"name": "cluewsc-test", "reference": 95.18, "tolerance": 1.0, "spread": 0.3}
    check = judge(entry, record(929, 976), expected_items=None)
    assert check.verdict == "pass" and check.warnings == ()
    assert check.metrics["interval"] == [pytest.approx(94.59, abs=0.01), pytest.approx(95.77, abs=0.01)]


def _write_reference(path: Path, outcomes: list[int]) -> Path:
    path.write_text("".join(json.dumps({"id": f"cluewsc-test/{i}", "correct": bool(v)}) + "\n"
                            for i, v in enumerate(outcomes)))
    return path


def test_paired_test_passes_churn_that_totals_would_fail(tmp_path: Path) -> None:
    # 100 items: the reference got 95 right; now 92 right, but 5 lost and 2 gained: churn, p = 0.23.
    ref = [1] * 95 + [0] * 5
    now = [1] * 90 + [0] * 5 + [1, 1, 0, 0, 0]
    reference = _write_reference(tmp_path / "ref.jsonl", ref)
    entry = {"name": "cluewsc-test", "reference": 95.0, "tolerance": 1.0, "reference_results": str(reference)}
    totals = judge({k: v for k, v in entry.items() if k != "reference_results"}, record(92, 100, items=items(now)),
                   expected_items=None)
    assert totals.verdict == "fail"
    paired = judge(entry, record(92, 100, items=items(now)), expected_items=None)
    assert paired.verdict == "pass"
    assert "McNemar on 100 paired items: 5 lost, 2 gained" in paired.message
    assert paired.metrics["p_value"] == pytest.approx(29 / 128)
    assert any("cannot tell the drop from noise" in w for w in paired.warnings)


def test_paired_test_fails_a_consistent_drop(tmp_path: Path) -> None:
    ref = [1] * 95 + [0] * 5
    now = [1] * 88 + [0] * 7 + [0] * 5
    reference = _write_reference(tmp_path / "ref.jsonl", ref)
    entry = {"name": "cluewsc-test", "reference": 95.0, "tolerance": 1.0, "reference_results": str(reference)}
    check = judge(entry, record(88, 100, items=items(now)), expected_items=None)
    assert check.verdict == "fail"
    assert check.metrics["p_value"] == pytest.approx(1 / 128)


def test_reference_results_relative_to_base_dir(tmp_path: Path) -> None:
    _write_reference(tmp_path / "ref.jsonl", [1, 1, 1, 1])
    entry = {"name": "cluewsc-test", "tolerance": 0.0, "reference_results": "ref.jsonl"}
    check = judge(entry, record(4, 4, items=items([1, 1, 1, 1])), expected_items=None, base_dir=tmp_path)
    assert check.verdict == "pass" and check.metrics["reference"] == 100.0


def test_reference_results_folder_with_other_config_version_is_an_error(results_dir: Path) -> None:
    from pytest_deepseek.accuracy import read_results

    (dev,) = [r for r in read_results(results_dir / "opencompass") if r.dataset == "cluewsc-dev"]
    same = judge({"name": "cluewsc-dev", "reference": 66.67, "tolerance": 1.0,
                  "reference_results": str(results_dir / "opencompass")}, dev, expected_items=3)
    assert same.verdict == "pass" and same.metrics["p_value"] == 1.0
    changed = ScoreRecord(**{**dev.__dict__, "config_version": "000000"})
    check = judge({"name": "cluewsc-dev", "reference": 66.67, "tolerance": 1.0,
                   "reference_results": str(results_dir / "opencompass")}, changed, expected_items=3)
    assert check.verdict == "error" and "differs from the reference run" in check.message


def test_missing_reference_results_file_is_an_error(tmp_path: Path) -> None:
    entry = {"name": "cluewsc-test", "reference": 95.0, "tolerance": 1.0, "reference_results": str(tmp_path / "no")}
    assert judge(entry, record(95, 100), expected_items=None).verdict == "error"


def test_paired_bootstrap_with_repeats(tmp_path: Path) -> None:
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"id": f"cluewsc-test/{i}", "score": 1.0}) + "\n" for i in range(50)))
    now = tuple(ItemResult(f"cluewsc-test/{i}", 0.5 if i < 10 else 1.0) for i in range(50))
    entry = {"name": "cluewsc-test", "reference": 100.0, "tolerance": 1.0, "reference_results": str(ref)}
    check = judge(entry, ScoreRecord("cluewsc-test", "accuracy", 90.0, 50, "evalscope", repeats=2, items=now),
                  expected_items=None)
    assert check.verdict == "fail" and "paired bootstrap on 50 items" in check.message
    assert check.metrics["p_value"] < 0.05


def test_a_reference_outside_0_to_100_is_a_warning_not_a_crash() -> None:
    # Per-item reference scores above 1 (a tool that scores 0..5) make a "reference" above 100%.
    from pytest_deepseek.accuracy.rule import _resolution

    resolvable, warning = _resolution(120.0, 1.0, 10, None, 0.95)
    assert resolvable == float("inf") and warning is not None and "not a percentage" in warning
