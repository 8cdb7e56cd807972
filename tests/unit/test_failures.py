"""Failures counted by kind, with the first examples of each, and the departures that are not failures."""

from __future__ import annotations

from pytest_deepseek.serving.failures import (
    EXAMPLES_PER_KIND, IN_FLIGHT, NO_DONE, NO_USAGE, failure_lines, summarize_failures,
)
from pytest_deepseek.serving.records import RequestRecord


def _record(index: int, *, kind: str | None = None, success: bool = False, status: int | None = 200,
            warmup: bool = False, done: bool = True, approximate: bool = False) -> RequestRecord:
    return RequestRecord(index=index, request_id=f"run-c1-{index}", api="completions", warmup=warmup,
                         t_send=1_000 + index, success=success, error_kind=kind, status=status,
                         error_detail=f"detail of {index}" if kind else None, done_seen=done,
                         approximate=approximate)


def test_counts_by_kind_most_frequent_first_with_examples_in_send_order() -> None:
    records = [_record(i, kind="http_5xx", status=503) for i in (7, 2, 5, 9)]
    records += [_record(3, kind="stall"), _record(4, success=True), _record(0, kind="http_5xx", warmup=True)]
    summary = summarize_failures(records)
    assert summary.measured == 6
    assert summary.failed == 5
    assert list(summary.by_kind.items()) == [("http_5xx", 4), ("stall", 1)]
    shown = summary.examples["http_5xx"]
    assert [e.request_id for e in shown] == ["run-c1-2", "run-c1-5", "run-c1-7"][:EXAMPLES_PER_KIND]
    assert shown[0].status == 503 and shown[0].detail == "detail of 2"


def test_not_failures_are_noted_not_counted() -> None:
    records = [_record(1, success=True, done=False), _record(2, success=True, approximate=True),
               _record(3, kind=None), _record(4, success=True)]
    summary = summarize_failures(records)
    assert summary.failed == 0 and summary.by_kind == {}
    assert summary.notes == {NO_DONE: 1, NO_USAGE: 1, IN_FLIGHT: 1}


def test_lines_name_kind_count_share_and_request_ids() -> None:
    records = [_record(i, kind="rate_limited", status=429) for i in range(2)] + [_record(9, success=True)]
    lines = failure_lines(summarize_failures(records).to_json())
    assert lines == ["rate_limited: 2 (66.7%), e.g. run-c1-0, run-c1-1; first: detail of 0"]


def test_lines_of_an_old_summary_without_failures_are_empty() -> None:
    assert failure_lines({}) == []
